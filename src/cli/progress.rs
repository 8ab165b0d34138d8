//! `berth apply` on a terminal: live progress per service, redrawn in place, instead
//! of the line-per-event log (which stays what a pipe, CI or journald gets): image pulls
//! with layers and bytes, each slot's new replica and its health gate's deadline
//! counting down, the old replica draining; a line per service as it ends.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::executor::progress::{unix_ms, Board, Event, Sink};

/// How often the countdowns are redrawn between events.
const TICK: Duration = Duration::from_millis(250);

/// Whether `berth apply` draws progress: stderr is a terminal and `RUST_LOG` does not
/// ask for the log.
pub(super) fn wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("RUST_LOG").is_none()
}

fn secs(until_ms: u64, now_ms: u64) -> u64 {
    until_ms.saturating_sub(now_ms).div_ceil(1000)
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_000_000.0)
}

/// The live lines for `board` at `now_ms`.
pub(super) fn lines(board: &Board, now_ms: u64) -> Vec<String> {
    let mut out = Vec::new();
    for (image, p) in &board.pulls {
        if p.layers == 0 {
            out.push(format!("pulling {image}"));
        } else {
            out.push(format!(
                "pulling {image}  {}/{} layers  {}/{} MB",
                p.layers_done,
                p.layers,
                mb(p.bytes),
                mb(p.bytes_total)
            ));
        }
    }
    for (name, s) in &board.services {
        out.push(format!("{name} → {}", s.image));
        for (slot, p) in &s.slots {
            let who = p.container.as_deref().unwrap_or("-");
            let what = if p.done {
                "serving".to_string()
            } else if let Some(deadline) = p.deadline_ms {
                let monitor = p
                    .monitor_ms
                    .map(|m| format!(", then for {}s", m.div_ceil(1000)))
                    .unwrap_or_default();
                format!(
                    "health gate: healthy within {}s{monitor}",
                    secs(deadline, now_ms)
                )
            } else {
                "starting".to_string()
            };
            out.push(format!("  slot {slot}  {who}  {what}"));
        }
        if !s.draining.is_empty() {
            let stop = s
                .drain_until_ms
                .map(|u| format!(" (stop in {}s)", secs(u, now_ms)))
                .unwrap_or_default();
            out.push(format!("  draining {}{stop}", s.draining.join(", ")));
        }
    }
    out
}

/// Draws on a terminal: the lines drawn last are cleared and drawn again.
struct Screen<W: Write> {
    out: W,
    drawn: usize,
}

impl<W: Write> Screen<W> {
    fn clear(&mut self) {
        for _ in 0..self.drawn {
            // Up one line, then clear it.
            let _ = write!(self.out, "\x1b[1A\x1b[2K");
        }
        self.drawn = 0;
    }

    fn draw(&mut self, lines: &[String]) {
        self.clear();
        for l in lines {
            let _ = writeln!(self.out, "{l}");
        }
        self.drawn = lines.len();
        let _ = self.out.flush();
    }

    /// A line that stays, above the live ones.
    fn keep(&mut self, line: &str) {
        self.clear();
        let _ = writeln!(self.out, "{line}");
    }
}

/// The progress view of one apply.
pub(super) struct Terminal {
    task: JoinHandle<()>,
    done: tokio_util::sync::CancellationToken,
}

impl Terminal {
    /// Starts drawing on stderr; the sink goes into the apply's options.
    pub(super) fn start() -> (Sink, Self) {
        let (tx, rx) = mpsc::unbounded_channel();
        let done = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(run(
            rx,
            Screen {
                out: std::io::stderr(),
                drawn: 0,
            },
            done.clone(),
        ));
        (Sink::new(tx), Self { task, done })
    }

    /// The apply is over: the events sent so far are drawn, the live lines cleared.
    pub(super) async fn finish(self) {
        self.done.cancel();
        let _ = self.task.await;
    }
}

async fn run<W: Write>(
    mut rx: mpsc::UnboundedReceiver<Event>,
    mut screen: Screen<W>,
    done: tokio_util::sync::CancellationToken,
) {
    let mut board = Board::default();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            biased;
            event = rx.recv() => {
                let Some(event) = event else { break };
                take(&mut board, &mut screen, &event);
            }
            _ = tick.tick(), if !board.is_idle() => {}
            _ = done.cancelled() => {
                while let Ok(event) = rx.try_recv() {
                    take(&mut board, &mut screen, &event);
                }
                break;
            }
        }
        screen.draw(&lines(&board, unix_ms(SystemTime::now())));
    }
    screen.clear();
}

fn take<W: Write>(board: &mut Board, screen: &mut Screen<W>, event: &Event) {
    match event {
        Event::PullDone { image, ok } => {
            screen.keep(&format!(
                "{} {image}",
                if *ok { "pulled" } else { "pull failed:" }
            ));
        }
        Event::ServiceDone { service, outcome } => {
            screen.keep(&format!("{service}: {outcome}"));
        }
        _ => {}
    }
    board.apply(event);
}

/// `berth status --watch`: `look` every `every`, printed again when it changed (on a
/// terminal the screen is cleared first). Returns when a look fails twice in a row.
pub(super) async fn watch<F, Fut>(every: Duration, mut look: F) -> u8
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u8, String)>,
{
    let terminal = std::io::stdout().is_terminal();
    let mut last: Option<String> = None;
    let mut failures = 0;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let (code, text) = look().await;
        if code != super::exit::OK {
            failures += 1;
            if failures >= 2 {
                return code;
            }
            continue;
        }
        failures = 0;
        if last.as_deref() == Some(text.as_str()) {
            continue;
        }
        let mut out = std::io::stdout().lock();
        if terminal {
            // Home, clear the screen.
            let _ = write!(out, "\x1b[H\x1b[2J");
        } else if last.is_some() {
            let _ = writeln!(out);
        }
        let _ = write!(out, "{text}");
        let _ = out.flush();
        last = Some(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_gating_and_a_replica_draining_read_as_lines() {
        let mut board = Board::default();
        for e in [
            Event::PullProgress {
                image: "app:v2".into(),
                layers_done: 1,
                layers: 3,
                bytes: 1_500_000,
                bytes_total: 4_000_000,
            },
            Event::ServiceStarted {
                service: "api".into(),
                image: "app:v2".into(),
            },
            Event::SlotDone {
                service: "api".into(),
                slot: 1,
            },
            Event::Gate {
                service: "api".into(),
                slot: 2,
                container: "shop-api-2-next".into(),
                deadline_ms: 10_500,
                monitor_ms: 2_000,
            },
            Event::Draining {
                service: "api".into(),
                containers: vec!["shop-api-1".into()],
                until_ms: 1_000,
            },
        ] {
            board.apply(&e);
        }
        assert_eq!(
            lines(&board, 0),
            [
                "pulling app:v2  1/3 layers  1.5/4.0 MB",
                "api → app:v2",
                "  slot 1  -  serving",
                "  slot 2  shop-api-2-next  health gate: healthy within 11s, then for 2s",
                "  draining shop-api-1 (stop in 1s)",
            ]
        );
    }

    #[tokio::test]
    async fn lines_are_redrawn_in_place_and_kept_lines_stay() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut out = Vec::new();
        let screen = Screen {
            out: &mut out,
            drawn: 0,
        };
        for e in [
            Event::ServiceStarted {
                service: "api".into(),
                image: "app:v2".into(),
            },
            Event::ServiceDone {
                service: "api".into(),
                outcome: "converged".into(),
            },
        ] {
            tx.send(e).unwrap();
        }
        let done = tokio_util::sync::CancellationToken::new();
        done.cancel();
        run(rx, screen, done).await;
        let text = String::from_utf8(out).unwrap();
        // Drawn, cleared, the outcome kept, nothing left drawn.
        assert_eq!(text, "api → app:v2\n\x1b[1A\x1b[2Kapi: converged\n");
    }
}
