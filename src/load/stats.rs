//! What a load run measures: latency histograms, delivery counters, and the CPU and memory of
//! the generator and (optionally) the server process, read from `/proc`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, up to a minute (anything slower is clamped there:
/// a run never lasts long enough for that to hide a real figure).
const HIGHEST_US: u64 = 60_000_000;
/// One histogram per shard, so that receivers on different worker threads rarely share a lock.
const SHARDS: usize = 16;

/// A latency histogram that many connection tasks record into.
pub struct Latencies {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl Latencies {
    pub fn new() -> anyhow::Result<Latencies> {
        let mut shards = Vec::with_capacity(SHARDS);
        for _ in 0..SHARDS {
            shards.push(Mutex::new(Histogram::new_with_bounds(1, HIGHEST_US, 3)?));
        }
        Ok(Latencies { shards })
    }

    /// Record one value; `who` picks the shard (a connection index).
    pub fn record(&self, who: usize, value: Duration) {
        let micros = u64::try_from(value.as_micros()).unwrap_or(HIGHEST_US);
        let mut shard = self.shards[who % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        shard.saturating_record(micros.clamp(1, HIGHEST_US));
    }

    /// Every shard merged into one summary.
    pub fn summary(&self) -> LatencySummary {
        let mut merged = match Histogram::<u64>::new_with_bounds(1, HIGHEST_US, 3) {
            Ok(histogram) => histogram,
            Err(_) => return LatencySummary::default(),
        };
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            // Same bounds on both sides, so adding cannot fail.
            let _ = merged.add(&*shard);
        }
        LatencySummary::of(&merged)
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    fn of(histogram: &Histogram<u64>) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            samples: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// Run-wide counters that the connection tasks add to.
#[derive(Default)]
pub struct Counters {
    /// Messages sent inside the measured window.
    pub sent: AtomicU64,
    /// Deliveries those messages should cause (each message times its audience).
    pub expected: AtomicU64,
    /// Deliveries of measured messages that arrived.
    pub received: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The kernel reports CPU time in these units through `/proc` (USER_HZ, fixed at 100 on
/// Linux whatever the kernel's own tick rate).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) a process has used so far; `None` where `/proc` is missing.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces and parentheses; the fields after it do not.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); `rest` starts at field 3.
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / TICKS_PER_SECOND)
}

/// Resident memory of a process in KiB (`VmRSS`); `None` where `/proc` is missing.
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU seconds the whole machine has spent busy (every state but idle and I/O wait), summed
/// over its cores; `None` where `/proc` is missing.
pub fn machine_busy_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: f64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(busy / TICKS_PER_SECOND)
}

/// CPU use of one process over a window, in cores (1.0 = one core busy all along).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct CpuUse {
    pub cpu_seconds: f64,
    pub cores: f64,
}

/// Samples CPU time at the start of a window and turns the difference into [`CpuUse`].
pub struct CpuWindow {
    whose: Whose,
    start_cpu: Option<f64>,
    start: std::time::Instant,
}

#[derive(Clone, Copy)]
enum Whose {
    Process(Option<u32>),
    Machine,
}

impl Whose {
    fn seconds(self) -> Option<f64> {
        match self {
            Whose::Process(pid) => cpu_seconds(pid),
            Whose::Machine => machine_busy_seconds(),
        }
    }
}

impl CpuWindow {
    /// A process: this one without a pid.
    pub fn start(pid: Option<u32>) -> CpuWindow {
        CpuWindow::of(Whose::Process(pid))
    }

    /// Every process on the machine.
    pub fn machine() -> CpuWindow {
        CpuWindow::of(Whose::Machine)
    }

    fn of(whose: Whose) -> CpuWindow {
        CpuWindow {
            whose,
            start_cpu: whose.seconds(),
            start: std::time::Instant::now(),
        }
    }

    pub fn finish(&self) -> Option<CpuUse> {
        let used = self.whose.seconds()? - self.start_cpu?;
        let wall = self.start.elapsed().as_secs_f64();
        Some(CpuUse {
            cpu_seconds: used,
            cores: if wall > 0.0 { used / wall } else { 0.0 },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let latencies = Latencies::new().unwrap();
        for i in 1..=1000u64 {
            latencies.record(i as usize, Duration::from_micros(i * 10));
        }
        let summary = latencies.summary();
        assert_eq!(summary.samples, 1000);
        assert!((summary.p50_ms - 5.0).abs() < 0.05, "{summary:?}");
        assert!((summary.p99_ms - 9.9).abs() < 0.05, "{summary:?}");
        assert!((summary.max_ms - 10.0).abs() < 0.05, "{summary:?}");
    }

    #[test]
    fn an_empty_histogram_summarizes_to_zeros() {
        assert_eq!(
            Latencies::new().unwrap().summary(),
            LatencySummary::default()
        );
    }

    #[test]
    fn this_process_has_a_cpu_time_and_a_resident_size() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(cpu_seconds(None).is_some());
            assert!(rss_kib(None).is_some_and(|kib| kib > 0));
            assert!(machine_busy_seconds().is_some_and(|s| s > 0.0));
        }
    }
}
