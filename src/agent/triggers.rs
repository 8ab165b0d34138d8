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
    let spread = if jitter { crate::retry::JITTER } else { 0.0 };
    let mut waits = crate::retry::Backoff::every(period, spread).delays();
    tokio::spawn(async move {
        loop {
            let wait = waits.next_delay();
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

/// Wakes the loop on die, destroy and health changes of managed containers. A stream
/// that breaks (the daemon restarted, say) wakes the loop too, so that an engine gone
/// away is noticed and reported at once, and is opened again once the engine answers,
/// backing off while it does not; its return wakes the loop again, which converges what
/// changed meanwhile.
pub(super) fn engine_events(
    engine: Arc<dyn Engine>,
    tx: mpsc::UnboundedSender<Trigger>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut delays = EVENTS_BACKOFF.delays();
        loop {
            let mut stream = engine.events();
            loop {
                tokio::select! {
                    item = futures_util::StreamExt::next(&mut stream) => match item {
                        Some(Ok(())) => {
                            delays.reset();
                            if tx.send(Trigger::DockerEvent).is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "docker event stream broke; reopening");
                            break;
                        }
                        None => break,
                    },
                    _ = stop.cancelled() => return,
                }
            }
            if tx.send(Trigger::DockerEvent).is_err() {
                return;
            }
            loop {
                tokio::select! { _ = tokio::time::sleep(delays.next_delay()) => {}, _ = stop.cancelled() => return }
                if engine.ping().await.is_ok() {
                    break;
                }
            }
            if tx.send(Trigger::DockerEvent).is_err() {
                return;
            }
        }
    });
}

/// The waits before an event stream that broke is opened again: 500 ms doubling to 30 s
/// while the stream keeps breaking.
const EVENTS_BACKOFF: crate::retry::Backoff =
    crate::retry::Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
