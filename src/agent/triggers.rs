//! What wakes the loop besides requests: timers (poll, resync) and the engine's event
//! stream.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Trigger;
use crate::runtime::Engine;

/// Sends `trigger` every `period` (with ±10 % jitter when asked).
pub(super) fn every(
    tx: mpsc::UnboundedSender<Trigger>,
    trigger: Trigger,
    period: Duration,
    jitter: bool,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let wait = if jitter {
                let f = 0.9 + 0.2 * (rand_fraction());
                period.mul_f64(f)
            } else {
                period
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
            if tx.send(trigger).is_err() {
                return;
            }
        }
    });
}

/// A number in [0, 1) from the clock; enough to spread polls of many hosts.
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos % 1_000_000) as f64 / 1_000_000.0
}

/// Wakes the loop on die, destroy and health changes of managed containers. A stream
/// that breaks (the daemon restarted, say) is opened again, backing off while it keeps
/// breaking at once.
pub(super) fn engine_events(
    engine: Arc<dyn Engine>,
    tx: mpsc::UnboundedSender<Trigger>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut delay = EVENTS_BACKOFF_START;
        loop {
            let mut stream = engine.events();
            loop {
                tokio::select! {
                    item = futures_util::StreamExt::next(&mut stream) => match item {
                        Some(Ok(())) => {
                            delay = EVENTS_BACKOFF_START;
                            if tx.send(Trigger::DockerEvent).is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "docker event stream broke; reopening");
                            break;
                        }
                        None => break,
                    },
                    _ = stop.cancelled() => return,
                }
            }
            tokio::select! { _ = tokio::time::sleep(delay) => {}, _ = stop.cancelled() => return }
            delay = (delay * 2).min(EVENTS_BACKOFF_MAX);
        }
    });
}

/// The first wait before an event stream that broke is opened again; it doubles up to
/// [`EVENTS_BACKOFF_MAX`] while the stream keeps breaking.
const EVENTS_BACKOFF_START: Duration = Duration::from_millis(500);
const EVENTS_BACKOFF_MAX: Duration = Duration::from_secs(30);
