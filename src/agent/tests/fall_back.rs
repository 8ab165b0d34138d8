//! A refused head falls back to the newest valid commit before it, examining each
//! commit once: a pusher's run of invalid commits is not loaded again at every head.

use std::path::Path;
use std::time::Duration;

use super::super::Trigger;
use super::support::Agent;
use crate::executor::tests::support::{api, MemoryLedger};
use crate::runtime::memory::MemoryEngine;
use crate::source::{GitAuth, GitSource};

const VALID: &str = "project: shop\nservices:\n  api:\n    image: app:v1\n    replicas: 1\n";

/// Runs `git` in `work`; returns what it printed.
fn git(work: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(work)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Commits `text` as `berth.yaml` in the repository at `work`; returns its SHA.
fn commit(work: &Path, text: &str, message: &str) -> String {
    std::fs::write(work.join("berth.yaml"), text).unwrap();
    git(work, &["add", "berth.yaml"]);
    git(work, &["commit", "-q", "--allow-empty", "-m", message]);
    git(work, &["rev-parse", "HEAD"])
}

fn examined(a: &Agent) -> u64 {
    a.metrics.commits_examined.get()
}

fn applied(a: &Agent) -> Option<String> {
    let st = a.status.try_read().ok()?;
    st.applied_commit.as_ref().map(|c| c.sha.clone())
}

#[tokio::test(start_paused = true)]
async fn a_fall_back_examines_each_refused_commit_once() {
    let repo = tempfile::tempdir().unwrap();
    let work = repo.path();
    git(work, &["init", "-q", "-b", "main"]);
    let good = commit(work, VALID, "release");
    for i in 1..=5 {
        commit(
            work,
            &VALID.replace("replicas: 1", &format!("replicas: -{i}")),
            "bad",
        );
    }
    let url = work.display().to_string();
    let a = Agent::start_with(
        MemoryEngine::new(),
        MemoryLedger::local(),
        api("app:v0", 1, ""),
        |c| {
            c.source = GitSource::new(&url, "main", "berth.yaml", &c.state_dir, GitAuth::default());
        },
    );
    // The head and the four refused before it, then the valid one.
    a.trigger(Trigger::Poll);
    a.until(Duration::from_secs(60), |a| {
        applied(a).as_ref() == Some(&good)
    })
    .await;
    assert_eq!(examined(&a), 6);
    // One more invalid head: the five refused before it are not loaded again.
    commit(work, "services: [unclosed\n", "broken");
    a.trigger(Trigger::Poll);
    a.until(Duration::from_secs(60), |a| examined(a) >= 7).await;
    a.until(Duration::from_secs(60), |a| a.reconciles() >= 2)
        .await;
    assert_eq!(examined(&a), 7);
    assert_eq!(applied(&a), Some(good));
}
