//! The loop's parts on their own: failed targets, pauses, the state-dir lock, and the
//! listener's refusal of an unsigned webhook.

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

use tokio::time::Instant;

use super::super::{FailedTargets, PauseState, StateLock};
use crate::executor::RetryPolicy;

fn policy() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(300),
        max_attempts: 3,
        jitter: 0.0,
    }
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_then_give_up() {
    let mut f = FailedTargets::default();
    let now = Instant::now();
    assert_eq!(
        f.record_failure("api", "h1", &policy(), now, true),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        f.record_failure("api", "h1", &policy(), now, true),
        Some(Duration::from_secs(20))
    );
    assert_eq!(f.record_failure("api", "h1", &policy(), now, true), None);
    assert!(f.list()[0].given_up);
    // A new spec starts over.
    assert_eq!(
        f.record_failure("api", "h2", &policy(), now, true),
        Some(Duration::from_secs(10))
    );
    assert_eq!(f.list()[0].attempts, 1);
}

#[test]
fn pause_and_resume_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = PauseState::load(dir.path());
    assert!(!p.is_paused("api"));
    p.pause(Some("api"));
    p.save(dir.path()).unwrap();
    let mut p = PauseState::load(dir.path());
    assert!(p.is_paused("api") && !p.is_paused("web"));
    p.pause(None);
    assert!(p.is_paused("web"));
    p.resume(None);
    assert!(!p.is_paused("api"));
}

/// The holder takes the lock, then writes its name: a second berth that looks in
/// between reads an empty file and must not take it for an agent's.
#[test]
fn a_holder_that_has_not_written_its_name_yet_is_not_taken_for_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.lock");
    let held = File::create(&path).unwrap();
    held.lock().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let mut held = held;
        write!(held, "4242 apply").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
    });
    let lock = StateLock::acquire(dir.path(), "agent", Duration::from_secs(30));
    writer.join().unwrap();
    assert!(lock.is_ok(), "{:?}", lock.err());
    let mut text = String::new();
    File::open(&path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, format!("{} agent", std::process::id()));
}

/// A holder whose name is half written (the pid, not yet the role) is not taken for an
/// agent's either: the role is awaited like an empty file.
#[test]
fn a_holder_whose_role_is_not_written_yet_is_not_taken_for_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.lock");
    let mut held = File::create(&path).unwrap();
    held.lock().unwrap();
    write!(held, "4242").unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        write!(held, " apply").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
    });
    let lock = StateLock::acquire(dir.path(), "agent", Duration::from_secs(30));
    writer.join().unwrap();
    assert!(lock.is_ok(), "{:?}", lock.err());
}

#[test]
fn a_second_agent_on_a_state_dir_is_refused_at_once_and_says_by_whom() {
    let dir = tempfile::tempdir().unwrap();
    let _first = StateLock::acquire(dir.path(), "agent", Duration::from_secs(1)).unwrap();
    let started = std::time::Instant::now();
    let second = StateLock::acquire(dir.path(), "agent", Duration::from_secs(600));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it did not wait"
    );
    let Err(e @ super::super::LockError::AgentRunning { .. }) = second else {
        panic!("{:?}", second.err());
    };
    assert_eq!(
        e.to_string(),
        format!(
            "another berth agent (pid {}) already runs with state dir {}; one agent per state dir",
            std::process::id(),
            dir.path().display()
        )
    );
}

/// A refused webhook wakes nothing: the handler answers only after it has decided, so
/// no trigger can follow a 401. A signed one wakes the loop once.
#[tokio::test]
async fn an_unsigned_webhook_wakes_nothing_and_a_signed_one_wakes_the_loop() {
    use hmac::Mac;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let config = super::support::config(
        dir.path(),
        std::sync::Arc::new(crate::executor::tests::support::MemoryLedger::local()),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let state = crate::api::ApiState {
        status: std::sync::Arc::new(tokio::sync::RwLock::new(super::super::AgentStatus::new(
            &config,
        ))),
        triggers: tx,
        webhook_secret: Some(std::sync::Arc::new(b"s3cr3t-hook".to_vec())),
        metrics: std::sync::Arc::new(crate::api::metrics::Metrics::new(None)),
        transport: crate::api::Transport::Tcp,
        control_socket: dir.path().join("control.sock"),
        branch: "main".into(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = crate::api::router(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let post = |signature: String| async move {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /hooks/git HTTP/1.0\r\nHost: berth\r\nContent-Length: {}\r\nX-Hub-Signature-256: {signature}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        answer
    };
    let answer = post("sha256=00".into()).await;
    assert!(answer.starts_with("HTTP/1.0 401"), "{answer}");
    assert!(matches!(
        rx.try_recv(),
        Err(tokio::sync::mpsc::error::TryRecvError::Empty)
    ));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cr3t-hook").unwrap();
    mac.update(br#"{"ref":"refs/heads/main"}"#);
    let signed = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let answer = post(signed).await;
    assert!(answer.starts_with("HTTP/1.0 202"), "{answer}");
    assert_eq!(rx.try_recv().unwrap(), super::super::Trigger::Webhook);
    assert!(rx.try_recv().is_err(), "once");
}
