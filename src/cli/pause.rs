//! `berth pause` and `berth resume`.

use std::time::Duration;

use super::{exit, PauseArgs};
use crate::agent::PauseState;

/// Records the pause (or its end) and asks a running agent to reconcile at once.
pub(super) async fn run(args: &PauseArgs, pause: bool) -> u8 {
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
    let told = poke_agent(args).await;
    let verb = if pause { "paused" } else { "resumed" };
    let agent = if told {
        "the agent reconciles now"
    } else {
        "no agent answered; it applies this at its next reconcile"
    };
    println!("{verb} {target}; {agent}");
    exit::OK
}

/// `POST /control/reconcile` on the agent's control socket in the state dir: no
/// secret needed, since only the agent's user and root can open it.
async fn poke_agent(args: &PauseArgs) -> bool {
    let socket = crate::api::control_socket::path_in(&args.state_dir);
    match crate::api::control_socket::post(&socket, "/control/reconcile", Duration::from_secs(5))
        .await
    {
        Ok((202, _)) => true,
        Ok((status, body)) => {
            eprintln!(
                "warning: the agent on {} answered {status}: {}",
                socket.display(),
                body.trim()
            );
            false
        }
        Err(crate::api::control_socket::ControlError::NoAgent { .. }) => false,
        Err(e) => {
            eprintln!("warning: {e}");
            false
        }
    }
}
