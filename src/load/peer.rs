//! One loaded connection: a writer that sends stamped frames on a schedule and a reader that
//! counts the stamped frames it receives, joined in one task.
//!
//! # Stamp
//! Every payload the generator sends is a JSON object
//! `{"m":"rdl:SENDER:SEQUENCE:NANOS","pad":"xxx…"}`, padded to the requested size. `NANOS`
//! counts from [`super::clock`]. The stamp is a string so that a server that parses and
//! re-serializes the payload (reordering keys, say) delivers it unchanged; receivers find it
//! by its `rdl:` prefix without parsing the frame.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

use super::stats::{Counters, Latencies};
use super::{clock, Ending, Socket, Window};

const MARK: &str = "rdl:";
/// Frames fed before one flush when a writer is behind: enough to catch up in few writes,
/// few enough that its reader is not starved meanwhile.
const MAX_BATCH: usize = 256;
/// How often the end of a run checks whether everything sent has arrived.
const DRAIN_POLL: Duration = Duration::from_millis(10);
/// Between the last connection set up and the first frame sent, so that every writer starts
/// on schedule rather than catching up.
const LEAD: Duration = Duration::from_millis(200);

/// A frame with a stamp to fill in: `prefix` + data object + `suffix`.
#[derive(Debug)]
pub struct Template {
    head: String,
    tail: String,
}

/// What a data object holds besides its padding: `{"m":"rdl:` + stamp + `","pad":"` … `"}`.
const STAMP_OVERHEAD: usize =
    r#"{"m":"rdl:"#.len() + 8 + 1 + 10 + 1 + 16 + r#"","pad":""#.len() + 2;

impl Template {
    /// A frame `envelope_head` + data + `envelope_tail` whose data object is `payload` bytes
    /// serialized (or as small as a stamp allows).
    pub fn new(envelope_head: &str, envelope_tail: &str, payload: usize) -> Template {
        let pad = "x".repeat(payload.saturating_sub(STAMP_OVERHEAD));
        Template {
            head: format!(r#"{envelope_head}{{"m":"{MARK}"#),
            tail: format!(r#"","pad":"{pad}"}}{envelope_tail}"#),
        }
    }

    pub fn render(&self, sender: u32, sequence: u64, nanos: u64) -> String {
        use std::fmt::Write;
        let mut frame = String::with_capacity(self.head.len() + self.tail.len() + 40);
        frame.push_str(&self.head);
        // Writing into a String cannot fail.
        let _ = write!(frame, "{sender:08}:{sequence:010}:{nanos:016}");
        frame.push_str(&self.tail);
        frame
    }
}

/// The stamp in a received frame: (sender, sequence, nanos).
pub fn parse_stamp(text: &str) -> Option<(u32, u64, u64)> {
    let start = text.find(MARK)? + MARK.len();
    let rest = &text[start..];
    let stamp = &rest[..rest.find('"')?];
    let mut parts = stamp.split(':');
    let sender = parts.next()?.parse().ok()?;
    let sequence = parts.next()?.parse().ok()?;
    let nanos = parts.next()?.parse().ok()?;
    Some((sender, sequence, nanos))
}

fn nanos(at: Instant) -> u64 {
    u64::try_from(at.into_std().saturating_duration_since(clock()).as_nanos()).unwrap_or(u64::MAX)
}

/// One run's schedule and what its connections add up.
pub struct Run {
    pub start: Instant,
    pub warm_end: Instant,
    pub send_end: Instant,
    warm_end_nanos: u64,
    send_end_nanos: u64,
    pub counters: Counters,
    pub latency: Latencies,
    pub lag: Latencies,
    /// Writers that have not finished their schedule.
    writing: AtomicUsize,
    stop: watch::Sender<bool>,
}

impl Run {
    /// A run whose first frame goes out shortly from now.
    pub fn new(window: Window) -> anyhow::Result<Arc<Run>> {
        let start = Instant::now() + LEAD;
        let warm_end = start + window.warmup;
        let send_end = warm_end + window.duration;
        Ok(Arc::new(Run {
            start,
            warm_end,
            send_end,
            warm_end_nanos: nanos(warm_end),
            send_end_nanos: nanos(send_end),
            counters: Counters::default(),
            latency: Latencies::new()?,
            lag: Latencies::new()?,
            writing: AtomicUsize::new(0),
            stop: watch::channel(false).0,
        }))
    }

    fn measured(&self, stamp: u64) -> bool {
        (self.warm_end_nanos..self.send_end_nanos).contains(&stamp)
    }

    /// Flips when the run is over and connections should close.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Wait for the end of sending, then until every measured delivery has arrived or `drain`
    /// has passed, then tell every connection to stop.
    pub async fn conclude(&self, drain: Duration) {
        sleep_until(self.send_end).await;
        let deadline = self.send_end + drain;
        loop {
            let writing = self.writing.load(Ordering::Acquire);
            let expected = Counters::get(&self.counters.expected);
            let received = Counters::get(&self.counters.received);
            if (writing == 0 && received >= expected) || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
        self.stop.send_replace(true);
    }

    /// Stop every connection now (a run that failed to set up).
    pub fn abort(&self) {
        self.stop.send_replace(true);
    }
}

/// What a sending connection sends.
pub struct Sending {
    /// The sender's number in stamps.
    pub sender: u32,
    /// Frames per second.
    pub rate: f64,
    /// Deliveries each frame should cause.
    pub audience: u64,
    /// Where in its interval this sender starts (0..1), so senders do not fire in lockstep.
    pub phase: f64,
    pub template: Arc<Template>,
}

/// Drive one connection until the run stops or the server ends it.
pub async fn drive(socket: Socket, who: usize, sending: Option<Sending>, run: Arc<Run>) -> Ending {
    let (mut sink, mut stream) = socket.split();
    let dead = AtomicBool::new(false);
    let woken = Notify::new();
    if sending.is_some() {
        run.writing.fetch_add(1, Ordering::AcqRel);
    }
    let writer = async {
        let Some(sending) = &sending else {
            return Ok(());
        };
        let result = write(&mut sink, sending, who, &run, &dead, &woken).await;
        run.writing.fetch_sub(1, Ordering::AcqRel);
        result
    };
    let reader = read(&mut stream, who, &run, &dead, &woken);
    let (written, ending) = tokio::join!(writer, reader);
    // A send that fails because the server dropped the connection is the server's close.
    let ending = match (ending, written) {
        (Ending::Ours, Err(error)) => match ending_of(error) {
            Ending::Error(error) => Ending::Error(format!("send failed: {error}")),
            dropped => dropped,
        },
        (ending, _) => ending,
    };
    if ending == Ending::Ours {
        if let Ok(mut socket) = sink.reunite(stream) {
            super::close(&mut socket).await;
        }
    }
    ending
}

async fn write(
    sink: &mut SplitSink<Socket, Message>,
    sending: &Sending,
    who: usize,
    run: &Run,
    dead: &AtomicBool,
    woken: &Notify,
) -> Result<(), tungstenite::Error> {
    let interval = Duration::from_secs_f64(1.0 / sending.rate);
    let mut next = run.start + interval.mul_f64(sending.phase.clamp(0.0, 1.0));
    let mut sequence = 0u64;
    while next < run.send_end {
        tokio::select! {
            _ = sleep_until(next) => {}
            _ = woken.notified() => {}
        }
        if dead.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = Instant::now();
        let mut batch = 0;
        while next <= now && next < run.send_end && batch < MAX_BATCH {
            let sent_at = Instant::now();
            let stamp = nanos(sent_at);
            let frame = sending.template.render(sending.sender, sequence, stamp);
            sink.feed(Message::text(frame)).await?;
            run.lag.record(who, sent_at.saturating_duration_since(next));
            if run.measured(stamp) {
                Counters::add(&run.counters.sent, 1);
                Counters::add(&run.counters.expected, sending.audience);
            }
            sequence += 1;
            next += interval;
            batch += 1;
        }
        sink.flush().await?;
    }
    Ok(())
}

async fn read(
    stream: &mut SplitStream<Socket>,
    who: usize,
    run: &Run,
    dead: &AtomicBool,
    woken: &Notify,
) -> Ending {
    let mut stopped = run.stopped();
    let ending = loop {
        tokio::select! {
            biased;
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some((_, _, stamp)) = parse_stamp(text.as_str()) {
                        let now = nanos(Instant::now());
                        if run.measured(stamp) {
                            Counters::add(&run.counters.received, 1);
                            run.latency.record(who, Duration::from_nanos(now.saturating_sub(stamp)));
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => break Ending::from_close(frame.as_ref()),
                Some(Ok(_)) => {}
                Some(Err(error)) => break ending_of(error),
                None => break Ending::dropped(),
            },
            _ = stopped.wait_for(|stop| *stop) => return Ending::Ours,
        }
    };
    dead.store(true, Ordering::Release);
    woken.notify_one();
    ending
}

/// A read error as the report counts it: a connection the server dropped is a close without a
/// frame (1006), anything else an error.
pub fn ending_of(error: tungstenite::Error) -> Ending {
    use tungstenite::error::ProtocolError;
    match error {
        tungstenite::Error::Io(_)
        | tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            Ending::dropped()
        }
        other => Ending::Error(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_survives_the_frame_and_pads_to_the_payload() {
        let template = Template::new(r#"{"type":"GameData","data":{"data":"#, "}}", 1024);
        let frame = template.render(7, 42, 123_456_789);
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["data"]["data"].to_string().len(), 1024);
        assert_eq!(parse_stamp(&frame), Some((7, 42, 123_456_789)));
        // A server that re-serializes the data object keeps the stamp readable.
        let relayed = serde_json::json!({"type": "GameData", "data": {"from_player": "p", "data": value["data"]["data"]}});
        assert_eq!(
            parse_stamp(&relayed.to_string()),
            Some((7, 42, 123_456_789))
        );
    }

    #[test]
    fn tiny_payloads_still_carry_a_stamp() {
        let frame = Template::new("", "", 1).render(1, 2, 3);
        assert_eq!(parse_stamp(&frame), Some((1, 2, 3)));
        assert_eq!(frame.len(), STAMP_OVERHEAD);
    }

    #[test]
    fn frames_without_a_stamp_are_not_deliveries() {
        for text in [
            "",
            "rdl:",
            r#"{"m":"rdl:1:2"}"#,
            r#"{"m":"rdl:a:b:c"}"#,
            r#"{"type":"ack"}"#,
        ] {
            assert_eq!(parse_stamp(text), None, "{text}");
        }
    }
}
