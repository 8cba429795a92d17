//! The table views (peers, rooms, channels, subscriptions, apps, catalog): a window of the
//! table around the selection, with the sort column marked.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Cell, Row as TableRow, Table};
use ratatui::Frame;

use super::block;
use crate::console::app::{App, View};
use crate::console::tables::Row;

pub fn draw(app: &App, frame: &mut Frame, area: Rect, view: View) {
    let theme = &app.theme;
    let state = app.table_state(view);
    let visible = area.height.saturating_sub(3) as usize;
    let total = app.row_count(view);
    let selected = state.selected.min(total.saturating_sub(1));
    // Keep the selection on screen; only the rows on screen are built.
    let first = selected.saturating_sub(visible.saturating_sub(1));
    let table = app.table_window(view, first, visible);
    let headers: Vec<String> = table
        .headers
        .iter()
        .enumerate()
        .map(|(index, h)| {
            let marker = match state.sort {
                Some(c) if c == index && state.descending => "▼",
                Some(c) if c == index => "▲",
                _ => "",
            };
            format!("{h}{marker}")
        })
        .collect();
    let widths = column_widths(view, &headers, &table.rows, area.width.saturating_sub(2));
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
    let header_cells = headers.into_iter().map(Cell::from);
    let mut title = format!(" {} ({}) ", view.title(), table.total);
    if !state.filter.is_empty() {
        title = format!(" {} ({}) /{} ", view.title(), table.total, state.filter);
    }
    let widget = Table::new(rows, widths)
        .header(TableRow::new(header_cells).style(theme.header))
        .block(block(theme, title));
    frame.render_widget(widget, area);
    if table.total == 0 && state.filter.is_empty() {
        if let Some(why) = empty_because(view) {
            let inner = Rect {
                x: area.x.saturating_add(1),
                y: area.y.saturating_add(2),
                width: area.width.saturating_sub(2),
                height: area.height.saturating_sub(3),
            };
            frame.render_widget(
                super::wrapped_paragraph(why, inner.width, true).style(theme.muted),
                inner,
            );
        }
    }
}

/// What an empty table means, where an empty table could be mistaken for a fault.
fn empty_because(view: View) -> Option<&'static str> {
    view.table().and_then(|table| table.empty)
}

/// How a view's columns give way when they do not fit: `keep` never shrinks (the columns that
/// name an object, since a cut id cannot be acted on and two cut ids can look alike, and the
/// short ones such as the dialect), `first` shrinks before the rest (what reads on in the
/// detail, such as an address).
struct Give {
    keep: &'static [usize],
    first: &'static [usize],
}

fn give(view: View) -> Give {
    view.table().map_or(
        Give {
            keep: &[],
            first: &[],
        },
        |table| Give {
            keep: table.keep,
            first: table.shrink_first,
        },
    )
}

/// Column widths sized to what the rows on screen hold (and the headers), fitting `space`
/// columns: when they do not fit, the columns that give way first shrink, then the widest of
/// the others, down to the width of the next widest, until they do.
fn column_widths(view: View, headers: &[String], rows: &[Row], space: u16) -> Vec<Constraint> {
    let count = headers.len();
    let mut natural: Vec<u16> = headers.iter().map(|h| text_width(h)).collect();
    for row in rows {
        for (column, cell) in row.cells.iter().enumerate().take(count) {
            if let Some(width) = natural.get_mut(column) {
                *width = (*width).max(text_width(cell));
            }
        }
    }
    let gaps = u16::try_from(count.saturating_sub(1)).unwrap_or(u16::MAX);
    let budget = space.saturating_sub(gaps);
    let give = give(view);
    // The columns that give way first shrink alone while that is enough.
    let others: Vec<usize> = (0..count).filter(|c| !give.first.contains(c)).collect();
    let mut widths = fit(&natural, &others, budget);
    if sum(&widths) > u32::from(budget) {
        // They are left out then: three letters of an address tell nothing.
        let mut floored = natural.clone();
        for &column in give.first {
            if let Some(width) = floored.get_mut(column) {
                *width = 0;
            }
        }
        let mut keep = give.keep.to_vec();
        keep.extend_from_slice(give.first);
        widths = fit(&floored, &keep, budget);
    }
    let last = widths.len().saturating_sub(1);
    widths
        .into_iter()
        .enumerate()
        .map(|(column, width)| {
            // Whatever is left over goes to the last column, where a long text (an address,
            // the errors of a close) reads on instead of stopping short.
            if column == last {
                Constraint::Min(width)
            } else {
                Constraint::Length(width)
            }
        })
        .collect()
}

/// No column shrinks below this, so that each still shows its start.
const FLOOR: u16 = 3;

fn sum(widths: &[u16]) -> u32 {
    widths.iter().map(|w| u32::from(*w)).sum()
}

/// The columns `text` takes once drawn, escapes included (see [`crate::text::printable`]).
fn text_width(text: &str) -> u16 {
    u16::try_from(crate::text::width(&crate::text::printable(text))).unwrap_or(u16::MAX)
}

/// Shrink the widest of `natural` (except those in `keep`) to a common cap until the sum fits
/// `budget`, no column below [`FLOOR`].
fn fit(natural: &[u16], keep: &[usize], budget: u16) -> Vec<u16> {
    let capped = |cap: u16| -> Vec<u16> {
        natural
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                if keep.contains(&i) {
                    w
                } else {
                    w.min(cap.max(FLOOR.min(w)))
                }
            })
            .collect()
    };
    let budget = u32::from(budget);
    if sum(natural) <= budget {
        return natural.to_vec();
    }
    // The largest cap that fits: the sum only grows with the cap.
    let (mut low, mut high) = (0u16, natural.iter().copied().max().unwrap_or(0));
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if sum(&capped(mid)) <= budget {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    capped(low)
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn what_fits_keeps_its_natural_width() {
        assert_eq!(fit(&[6, 10, 4], &[0], 30), vec![6, 10, 4]);
    }

    #[test]
    fn the_widest_shrink_first_and_ids_never() {
        // 40 + 30 + 8 + 20 = 98 in 60: the cap is 16, the id keeps its 20.
        assert_eq!(fit(&[40, 30, 8, 20], &[3], 60), vec![16, 16, 8, 20]);
    }

    #[test]
    fn nothing_goes_below_the_floor_even_when_nothing_fits() {
        assert_eq!(fit(&[40, 2, 30], &[], 4), vec![3, 2, 3]);
    }
}
