//! `berth pause` and `berth resume`.

use std::io::Write;
use std::time::Duration;

use super::{exit, PauseArgs};
use crate::agent::PauseState;

/// Records the pause (or its end) and asks a running agent to reconcile at once.
pub fn run(args: &PauseArgs, pause: bool) -> u8 {
    let mut state = PauseState::load(&args.state_dir);
    let what = args.service.as_deref();
    if pause {
        state.pause(what);
    } else {
        state.resume(what);
    }
    if let Err(e) = state.save(&args.state_dir) {
        eprintln!("error: {}: {e}", args.state_dir.display());
        return exit::FAILED;
    }
    let target = what
        .map(|s| format!("service {s}"))
        .unwrap_or_else(|| "every service".into());
    let told = poke_agent(args);
    let verb = if pause { "paused" } else { "resumed" };
    let agent = if told {
        "the agent reconciles now"
    } else {
        "no agent answered; it applies this at its next reconcile"
    };
    println!("{verb} {target}; {agent}");
    exit::OK
}

/// `POST /control/reconcile` on the agent's loopback listener.
fn poke_agent(args: &PauseArgs) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&args.listen, Duration::from_secs(1))
    else {
        return false;
    };
    let req = format!("POST /control/reconcile HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", args.listen);
    s.write_all(req.as_bytes()).is_ok()
}
