//! The table views (peers, rooms, channels, subscriptions, apps, catalog): a window of the
//! table around the selection, with the sort column marked.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Row as TableRow, Table};
use ratatui::Frame;

use super::block;
use crate::console::app::{App, View};

pub fn draw(app: &App, frame: &mut Frame, area: Rect, view: View) {
    let theme = &app.theme;
    let state = app.table_state(view);
    let visible = area.height.saturating_sub(3) as usize;
    let total = app.row_count(view);
    let selected = state.selected.min(total.saturating_sub(1));
    // Keep the selection on screen; only the rows on screen are built.
    let first = selected.saturating_sub(visible.saturating_sub(1));
    let table = app.table_window(view, first, visible);
    let rows = table.rows.iter().enumerate().map(|(offset, row)| {
        let style = if first + offset == selected {
            theme.selection
        } else {
            row.severity
                .map(|s| theme.severity(s))
                .unwrap_or(theme.text)
        };
        // Cells hold what clients sent; they are escaped here, where they become widgets.
        TableRow::new(
            row.cells
                .iter()
                .map(|c| Cell::from(crate::text::printable(c).into_owned())),
        )
        .style(style)
    });
    let widths = column_widths(view, table.headers.len());
    let header_cells = table.headers.iter().enumerate().map(|(index, h)| {
        let marker = match state.sort {
            Some(c) if c == index && state.descending => "▼",
            Some(c) if c == index => "▲",
            _ => "",
        };
        Cell::from(format!("{h}{marker}"))
    });
    let mut title = format!(" {} ({}) ", view.title(), table.total);
    if !state.filter.is_empty() {
        title = format!(" {} ({}) /{} ", view.title(), table.total, state.filter);
    }
    let widget = Table::new(rows, widths)
        .header(TableRow::new(header_cells).style(theme.header))
        .block(block(theme, title));
    frame.render_widget(widget, area);
}

fn column_widths(view: View, count: usize) -> Vec<Constraint> {
    // What tells one close from another fits 80 columns; errors and addresses take what is
    // left, rather than squeezing every column.
    if view == View::History {
        return [8, 5, 11, 6, 9, 7, 24]
            .into_iter()
            .map(Constraint::Length)
            .chain([Constraint::Fill(1), Constraint::Fill(1)])
            .take(count)
            .collect();
    }
    let fixed: &[u16] = match view {
        View::Peers => &[6, 11, 13, 14, 7, 6, 6, 4, 21],
        View::Rooms => &[7, 12, 12, 8, 6, 10, 14],
        View::Channels => &[11, 14, 30, 8, 9],
        View::Subscriptions => &[7, 11, 20, 20, 30],
        View::Apps => &[14, 16, 10, 6, 60],
        View::Catalog => &[12, 32, 9, 23, 40],
        View::Bans => &[4, 30, 9, 20, 20],
        View::Nodes => &[14, 7, 22, 7, 10, 7, 6, 10],
        _ => &[],
    };
    (0..count)
        .map(|i| match fixed.get(i) {
            Some(w) if i + 1 < count => Constraint::Length(*w),
            _ => Constraint::Min(8),
        })
        .collect()
}
