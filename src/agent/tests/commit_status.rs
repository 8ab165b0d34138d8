//! Commit statuses from the loop, on the memory engine and a git host's API on loopback
//! (the wall clock: the API is real sockets): pending when a commit's reconcile starts,
//! then success or failure with the reason's first line; a host that fails is retried
//! and changes nothing of the reconcile.

use std::time::Duration;

use super::super::Trigger;
use super::support::Agent;
use crate::api::metrics::OutcomeLabels;
use crate::commit_status::tests::server::{ApiHost, Seen};
use crate::commit_status::{CommitStatus, Provider, Remote, Target, Token};
use crate::executor::tests::support::{api, MemoryLedger};
use crate::runtime::memory::{MemoryEngine, Op};

const SHA: &str = "c0ffee0000000000000000000000000000000000";
const TOKEN: &str = "ghp-agent-test-token";
const WAIT: Duration = Duration::from_secs(30);

fn reporter(host: &ApiHost, provider: Provider, path: &str) -> CommitStatus {
    let target = Target {
        provider,
        base: host.base(),
        remote: Remote {
            host: "git.example".into(),
            path: path.into(),
        },
        token: Token(TOKEN.into()),
        context: "berth/h1".into(),
    };
    let retry = crate::retry::RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(100),
        max_attempts: 8,
        jitter: 0.0,
    };
    CommitStatus::start(target, retry, None).unwrap()
}

fn one() -> crate::plan::Desired {
    api("app:v1", 1, "    update: { monitor: 1s, deadline: 10s }\n")
}

fn seen(state: &str, description: &str) -> Seen {
    Seen {
        sha: SHA.into(),
        state: state.into(),
        context: "berth/h1".into(),
        description: description.into(),
    }
}

fn converged(a: &Agent) -> u64 {
    a.metrics
        .reconciles
        .get_or_create(&OutcomeLabels {
            outcome: "converged".into(),
        })
        .get()
}

#[tokio::test]
async fn a_converged_commit_goes_pending_then_success() {
    for (provider, path) in [
        (Provider::GitHub, "acme/shop"),
        (Provider::GitLab, "group/shop"),
        (Provider::Gitea, "acme/shop"),
    ] {
        let host = ApiHost::start(provider, TOKEN, path, 0).await;
        let a = Agent::start_with(MemoryEngine::new(), MemoryLedger::local(), one(), |c| {
            c.commit_status = reporter(&host, provider, path);
        });
        a.trigger(Trigger::Control);
        let got = host.wait_seen(2, WAIT).await;
        assert_eq!(
            got,
            vec![seen("pending", "deploying"), seen("success", "deployed")],
            "{provider:?}: refused {:?}",
            host.refused()
        );
        assert_eq!(converged(&a), 1);
        // A later reconcile of the same commit in sync sends nothing more.
        a.trigger(Trigger::Control);
        a.until(WAIT, |a| a.reconciles() == 2).await;
        a.shutdown.cancel();
        a.task.await.unwrap();
        assert_eq!(host.requests(), 2, "{provider:?}");
    }
}

#[tokio::test]
async fn a_failed_commit_goes_pending_then_failure_with_the_first_line_of_why() {
    let engine = MemoryEngine::new();
    engine.fail(Op::Pull, "app:v1");
    let host = ApiHost::start(Provider::GitLab, TOKEN, "group/shop", 0).await;
    let a = Agent::start_with(engine, MemoryLedger::local(), one(), |c| {
        c.commit_status = reporter(&host, Provider::GitLab, "group/shop");
    });
    a.trigger(Trigger::Control);
    let got = host.wait_seen(2, WAIT).await;
    assert_eq!(got.len(), 2, "{got:?} refused {:?}", host.refused());
    assert_eq!(got[0], seen("pending", "deploying"));
    assert_eq!(got[1].state, "failed");
    assert!(got[1].description.starts_with("api: "), "{got:?}");
    assert!(got[1].description.contains("pull"), "{got:?}");
    assert!(!got[1].description.contains('\n'), "{got:?}");
    // The status tells what the agent's status tells.
    let status = a.status.read().await.clone();
    let error = status.services["api"]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(
        error.starts_with(
            got[1]
                .description
                .trim_start_matches("api: ")
                .trim_end_matches('…')
        ),
        "{error} / {}",
        got[1].description
    );
}

#[tokio::test]
async fn a_git_host_that_fails_is_retried_and_the_reconcile_does_not_wait_for_it() {
    let host = ApiHost::start(Provider::GitHub, TOKEN, "acme/shop", 4).await;
    let a = Agent::start_with(MemoryEngine::new(), MemoryLedger::local(), one(), |c| {
        c.commit_status = reporter(&host, Provider::GitHub, "acme/shop");
    });
    a.trigger(Trigger::Control);
    a.until(WAIT, |a| a.reconciles() == 1).await;
    assert_eq!(
        converged(&a),
        1,
        "the reconcile converged whatever the host answered"
    );
    assert_eq!(a.engine.running().len(), 1);
    let got = host.wait_seen(2, WAIT).await;
    assert_eq!(
        got,
        vec![seen("pending", "deploying"), seen("success", "deployed")]
    );
    // Four 500s, then each status once.
    assert_eq!(host.requests(), 6);
}
