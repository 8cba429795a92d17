//! The flight recorder: every peer's last frames in and out, kept so that an engineer can see
//! what a player went through after the player is gone (admin `frames`, `export`).
//!
//! # Cost on the hot path
//! Recording a frame is one uncontended mutex on the peer's own ring, a push and one atomic
//! update of the global budget (the frames it evicts are settled in the same update).
//! Outbound frames are recorded where they are queued ([`crate::server::peer::PeerHandle`]'s
//! `enqueue`), inbound ones where the connection loop reads them; both keep a clone of the
//! refcounted [`Utf8Bytes`] already in hand, so a fan-out to a room records the one serialized
//! buffer every member shares rather than a copy each. Inbound frames of at most
//! [`COPY_INBOUND_BELOW`] bytes are copied instead: the socket's read buffer is shared by the
//! frames cut from it, and holding a slice of it would keep the whole buffer alive for as long
//! as the frame stays recorded.
//!
//! # Bounds
//! Per peer: `frames_per_peer` frames and `bytes_per_peer` bytes; the oldest frames go first.
//! A frame larger than `bytes_per_peer` is recorded as a one-line placeholder saying its size.
//! Globally: `budget_bytes`, counted in one atomic. When recording a frame would pass the
//! budget, the peer first gives up its own oldest frames; if that is not enough, the new frame
//! is not recorded (the peer keeps what it had). A busy server therefore keeps the beginnings
//! of its peers' stories rather than letting one noisy peer evict everyone else's.
//!
//! A closed peer's ring moves into its history entry (see [`crate::server::hub`]); its bytes
//! stay counted until the entry leaves the history, when the ring is dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::protocol::admin::{Direction, RecordedFrame};

/// Inbound frames up to this size are copied rather than kept as a slice of the read buffer.
pub const COPY_INBOUND_BELOW: usize = 1024;

/// Config key `recorder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecorderSettings {
    pub enabled: bool,
    pub frames_per_peer: usize,
    pub bytes_per_peer: usize,
    /// Bytes of recorded frames, all peers (live and in the history) together.
    pub budget_bytes: usize,
}

impl Default for RecorderSettings {
    fn default() -> Self {
        RecorderSettings {
            enabled: true,
            frames_per_peer: 64,
            bytes_per_peer: 32 * 1024,
            budget_bytes: 64 << 20,
        }
    }
}

impl RecorderSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.frames_per_peer) {
            return Err("recorder.frames_per_peer must be within 1..=10000".to_owned());
        }
        if !(1024..=(16 << 20)).contains(&self.bytes_per_peer) {
            return Err("recorder.bytes_per_peer must be within 1 KiB..=16 MiB".to_owned());
        }
        if self.budget_bytes < self.bytes_per_peer || self.budget_bytes > (16usize << 30) {
            return Err(
                "recorder.budget_bytes must be at least bytes_per_peer and at most 16 GiB"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// The server-wide side: settings, the byte counter, and the order frames were recorded in.
#[derive(Debug)]
pub struct Recorder {
    settings: RecorderSettings,
    used: Arc<AtomicUsize>,
    /// Orders frames across peers (an export interleaves several connections by it).
    next_seq: AtomicU64,
}

impl Recorder {
    pub fn new(settings: RecorderSettings) -> Recorder {
        Recorder {
            settings,
            used: Arc::new(AtomicUsize::new(0)),
            next_seq: AtomicU64::new(0),
        }
    }

    pub fn settings(&self) -> RecorderSettings {
        self.settings
    }

    /// Bytes of frames held, all peers together.
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// A peer's recording, or `None` when the recorder is off.
    pub fn recording(&self) -> Option<PeerRecording> {
        self.settings.enabled.then(|| PeerRecording {
            path: OnceLock::new(),
            ring: Mutex::new(Ring {
                frames: VecDeque::new(),
                bytes: 0,
                used: self.used.clone(),
            }),
        })
    }

    fn seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }
}

/// One recorded frame, with the server-wide order it was recorded in.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u64,
    pub at_ms: u64,
    pub direction: Direction,
    pub text: Utf8Bytes,
}

impl Record {
    pub fn frame(&self) -> RecordedFrame {
        RecordedFrame {
            at_ms: self.at_ms,
            direction: self.direction,
            text: self.text.as_str().to_owned(),
        }
    }
}

/// A peer's frames. Dropping it gives its bytes back to the budget.
#[derive(Debug)]
pub struct Ring {
    frames: VecDeque<Record>,
    bytes: usize,
    used: Arc<AtomicUsize>,
}

impl Ring {
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.frames.iter()
    }

    /// Drop the oldest frame; its length, which the caller gives back to the budget.
    fn pop_oldest(&mut self) -> Option<usize> {
        let old = self.frames.pop_front()?;
        self.bytes -= old.text.len();
        Some(old.text.len())
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// What a live peer carries: its upgrade path and its ring.
#[derive(Debug)]
pub struct PeerRecording {
    path: OnceLock<String>,
    ring: Mutex<Ring>,
}

/// Longest upgrade path kept with a recording. Paths are not counted in `budget_bytes`, and
/// a query string can be 60 KB: 2,000 history entries of those held 120 MiB.
pub const MAX_PATH_BYTES: usize = 2048;

impl PeerRecording {
    pub fn set_path(&self, path: String) {
        let _ = self
            .path
            .set(crate::text::clip_bytes(&path, MAX_PATH_BYTES));
    }

    pub fn path(&self) -> Option<&str> {
        self.path.get().map(String::as_str)
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the ring leaves it structurally whole (push/pop only).
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record one frame (see the module docs for the bounds).
    pub fn record(&self, recorder: &Recorder, direction: Direction, text: &Utf8Bytes) {
        let settings = &recorder.settings;
        let text = if text.len() > settings.bytes_per_peer {
            Utf8Bytes::from(format!(
                "<{} bytes, more than the recorder keeps of one frame>",
                text.len()
            ))
        } else if direction == Direction::In && text.len() <= COPY_INBOUND_BELOW {
            Utf8Bytes::from(text.as_str())
        } else {
            text.clone()
        };
        let length = text.len();
        let mut ring = self.ring();
        // The budget is shared by every peer on every core: what this append frees and takes
        // is settled in one update of it, not one per frame.
        let mut freed = 0;
        while ring.frames.len() >= settings.frames_per_peer
            || ring.bytes + length > settings.bytes_per_peer
        {
            match ring.pop_oldest() {
                Some(old) => freed += old,
                None => break,
            }
        }
        while ring.used.load(Ordering::Relaxed).saturating_sub(freed) + length
            > settings.budget_bytes
        {
            match ring.pop_oldest() {
                Some(old) => freed += old,
                None => {
                    ring.used.fetch_sub(freed, Ordering::Relaxed);
                    return;
                }
            }
        }
        // A full ring of same-sized frames (a game's steady traffic) frees what it takes:
        // then the budget, a cache line every core writes, is left alone.
        match length.cmp(&freed) {
            std::cmp::Ordering::Greater => {
                ring.used.fetch_add(length - freed, Ordering::Relaxed);
            }
            std::cmp::Ordering::Less => {
                ring.used.fetch_sub(freed - length, Ordering::Relaxed);
            }
            std::cmp::Ordering::Equal => {}
        }
        ring.bytes += length;
        ring.frames.push_back(Record {
            seq: recorder.seq(),
            at_ms: now_ms(),
            direction,
            text,
        });
    }

    /// A copy of the frames, oldest first.
    pub fn records(&self) -> Vec<Record> {
        self.ring().frames.iter().cloned().collect()
    }

    pub fn frame_count(&self) -> usize {
        self.ring().len()
    }

    /// Take the ring out (the peer closed): its frames move to the history entry and the ring
    /// starts empty (a frame still in flight lands there and is dropped with the peer).
    pub fn take(&self) -> Ring {
        let mut ring = self.ring();
        let used = ring.used.clone();
        std::mem::replace(
            &mut *ring,
            Ring {
                frames: VecDeque::new(),
                bytes: 0,
                used,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn recorder(frames: usize, bytes: usize, budget: usize) -> Recorder {
        Recorder::new(RecorderSettings {
            enabled: true,
            frames_per_peer: frames,
            bytes_per_peer: bytes,
            budget_bytes: budget,
        })
    }

    #[test]
    fn a_ring_keeps_the_last_frames_within_its_bounds() {
        let recorder = recorder(3, 1024, 1 << 20);
        let peer = recorder.recording().unwrap();
        for i in 0..10 {
            peer.record(&recorder, Direction::In, &format!("f{i}").into());
        }
        let texts: Vec<String> = peer.records().iter().map(|r| r.text.to_string()).collect();
        assert_eq!(texts, ["f7", "f8", "f9"]);
        assert_eq!(recorder.used_bytes(), 6);
        let big = "x".repeat(2000);
        peer.record(&recorder, Direction::Out, &big.as_str().into());
        assert!(peer.records().last().unwrap().text.contains("2000 bytes"));
        let ring = peer.take();
        assert_eq!(ring.len(), 3);
        drop(ring);
        assert_eq!(
            recorder.used_bytes(),
            0,
            "a dropped ring gives its bytes back"
        );
    }

    #[test]
    fn over_the_global_budget_new_frames_are_not_recorded() {
        let recorder = recorder(100, 1024, 1024);
        let a = recorder.recording().unwrap();
        let b = recorder.recording().unwrap();
        let frame: Utf8Bytes = "y".repeat(1000).into();
        a.record(&recorder, Direction::Out, &frame);
        b.record(&recorder, Direction::Out, &frame);
        assert_eq!(a.frame_count(), 1);
        assert_eq!(b.frame_count(), 0, "b had nothing of its own to give up");
        a.record(&recorder, Direction::Out, &frame);
        assert_eq!(a.frame_count(), 1, "a gave up its own oldest frame");
        assert!(recorder.used_bytes() <= 1024);
    }
}
