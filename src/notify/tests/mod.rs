mod formats;
mod links;
mod signing;

use super::deployed_once::DEPLOYED_ONCE_CAPACITY;
use super::notifier::Tuning;
use super::*;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

use crate::http_client::{ClientOptions, HttpClient, RequestError};

/// What the test server saw: request path, body, and the status it answered.
type Hit = (String, Value, u16);

#[derive(Clone)]
struct Hook {
    /// Statuses to answer, in order; 200 once they run out (or `fallback`).
    script: Arc<Mutex<VecDeque<u16>>>,
    fallback: u16,
    hits: mpsc::UnboundedSender<Hit>,
    /// When set, each answer waits for a permit.
    gate: Option<Arc<Semaphore>>,
}

async fn hook(State(h): State<Hook>, uri: Uri, Json(body): Json<Value>) -> StatusCode {
    if let Some(gate) = &h.gate {
        gate.acquire().await.unwrap().forget();
    }
    let status = h.script.lock().unwrap().pop_front().unwrap_or(h.fallback);
    let _ = h.hits.send((uri.to_string(), body, status));
    StatusCode::from_u16(status).unwrap()
}

/// A real HTTP server on loopback; returns its base URL and what it receives.
async fn server(
    script: &[u16],
    fallback: u16,
    gate: Option<Arc<Semaphore>>,
) -> (String, mpsc::UnboundedReceiver<Hit>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Hook {
        script: Arc::new(Mutex::new(script.iter().copied().collect())),
        fallback,
        hits: tx,
        gate,
    };
    let app = Router::new()
        .route("/{*path}", post(hook))
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

/// A loopback port nobody listens on.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/dead")
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Hit>) -> Hit {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the server got nothing in time")
        .expect("server gone")
}

fn event(kind: EventKind, message: &str) -> Event {
    Event {
        kind,
        project: "shop".to_string(),
        host: "host-1".to_string(),
        service: Some("web".to_string()),
        commit: Some("0123456789abcdef0123456789abcdef01234567".to_string()),
        image: Some("nginx:1.27".to_string()),
        message: message.to_string(),
        time: "2025-01-02T03:04:05Z".to_string(),
        ..Default::default()
    }
}

fn start(urls: Vec<String>, format: Format, retry: RetryPolicy) -> Notifier {
    start_tuned(urls, format, retry, Tuning::default())
}

fn start_tuned(urls: Vec<String>, format: Format, retry: RetryPolicy, tuning: Tuning) -> Notifier {
    let config = NotifyConfig {
        urls,
        format,
        retry,
        ca_file: None,
        secret: None,
        repository: None,
    };
    Notifier::start_tuned(config, tuning).unwrap()
}

fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        max_attempts,
        ..DEFAULT_RETRY
    }
}

#[tokio::test]
async fn json_event_arrives_exactly_and_in_order() {
    let (base, mut hits) = server(&[], 200, None).await;
    let n = start(vec![format!("{base}/hooks/abc")], Format::Json, fast(3));
    let mut e = event(EventKind::Deployed, "web is up");
    e.image = None;
    n.send(e);
    let (path, body, _) = next(&mut hits).await;
    assert_eq!(path, "/hooks/abc");
    assert_eq!(
        body,
        json!({
            "kind": "deployed",
            "project": "shop",
            "host": "host-1",
            "service": "web",
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "image": null,
            "message": "web is up",
            "time": "2025-01-02T03:04:05Z"
        })
    );

    for i in 0..20 {
        n.send(event(EventKind::Failed, &format!("event {i}")));
    }
    for i in 0..20 {
        let (_, body, _) = next(&mut hits).await;
        assert_eq!(body["message"], format!("event {i}"));
        assert_eq!(body["kind"], "failed");
    }
    assert!(n.flush(Duration::from_secs(5)).await);
}

#[test]
fn kinds_serialize_kebab_case() {
    let kinds = [
        (EventKind::Deployed, "deployed"),
        (EventKind::Failed, "failed"),
        (EventKind::RolledBack, "rolled-back"),
        (EventKind::InvalidCommit, "invalid-commit"),
    ];
    for (kind, name) in kinds {
        assert_eq!(payload(&event(kind, ""), Format::Json, "")["kind"], name);
    }
}

#[tokio::test]
async fn urls_in_a_message_are_sent_without_their_credentials() {
    let (base, mut hits) = server(&[], 200, None).await;
    let n = start(vec![format!("{base}/hook")], Format::Json, fast(3));
    n.send(event(
        EventKind::InvalidCommit,
        "fetch https://deploy:tok-4f1a@git.example/x.git (main): refused; see http://h/x?token=t-4f1a",
    ));
    let (_, body, _) = next(&mut hits).await;
    assert_eq!(
        body["message"],
        "fetch https://deploy:***@git.example/x.git (main): refused; see http://h/x?token=***"
    );
}

#[tokio::test]
async fn slack_format_is_what_is_sent() {
    let (base, mut hits) = server(&[], 200, None).await;
    let n = start(
        vec![format!("{base}/services/T/B/X")],
        Format::Slack,
        fast(3),
    );
    let e = event(EventKind::RolledBack, "kept the old containers");
    n.send(e.clone());
    let (_, body, _) = next(&mut hits).await;
    assert_eq!(body, payload(&e, Format::Slack, ""));
}

#[tokio::test]
async fn error_then_success_is_delivered_on_retry_in_order() {
    let (base, mut hits) = server(&[500], 200, None).await;
    let n = start(vec![format!("{base}/h")], Format::Json, fast(3));
    n.send(event(EventKind::Deployed, "first"));
    n.send(event(EventKind::Deployed, "second"));
    let seen: Vec<(String, u16)> = [
        next(&mut hits).await,
        next(&mut hits).await,
        next(&mut hits).await,
    ]
    .into_iter()
    .map(|(_, body, status)| (body["message"].as_str().unwrap().to_string(), status))
    .collect();
    assert_eq!(
        seen,
        vec![
            ("first".to_string(), 500),
            ("first".to_string(), 200),
            ("second".to_string(), 200)
        ]
    );
    assert!(n.flush(Duration::from_secs(5)).await);
    assert!(hits.try_recv().is_err(), "nothing sent twice");
}

#[tokio::test]
async fn failing_endpoint_is_given_up_after_attempts() {
    let (base, mut hits) = server(&[], 500, None).await;
    let n = start(vec![format!("{base}/h")], Format::Json, fast(3));
    n.send(event(EventKind::Failed, "boom"));
    assert!(n.flush(Duration::from_secs(10)).await, "given up in time");
    let mut count = 0;
    while let Ok((_, _, status)) = hits.try_recv() {
        assert_eq!(status, 500);
        count += 1;
    }
    assert_eq!(count, 3, "exactly `attempts` tries");
}

#[tokio::test]
async fn dead_endpoint_does_not_hold_a_live_one() {
    let (base, mut hits) = server(&[], 200, None).await;
    let retry = RetryPolicy {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(1),
        max_attempts: 3,
        ..DEFAULT_RETRY
    };
    // The dead one first, so a sequential sender would reach the live one last.
    let n = start(
        vec![dead_url().await, format!("{base}/live")],
        Format::Json,
        retry,
    );
    let started = Instant::now();
    for i in 0..3 {
        n.send(event(EventKind::Deployed, &format!("e{i}")));
    }
    for i in 0..3 {
        let (path, body, _) = next(&mut hits).await;
        assert_eq!(
            (path.as_str(), body["message"].clone()),
            ("/live", json!(format!("e{i}")))
        );
    }
    let live_done = started.elapsed();
    // The dead endpoint needs at least 3 × (0.9 × (200 + 400)) ms to give everything
    // up, so it must still be busy once the live one has all three events.
    assert!(
        !n.flush(Duration::ZERO).await,
        "dead endpoint still retrying"
    );
    assert!(
        n.flush(Duration::from_secs(20)).await,
        "dead endpoint given up"
    );
    let dead_done = started.elapsed();
    assert!(dead_done >= Duration::from_millis(3 * 540), "{dead_done:?}");
    assert!(
        live_done * 2 < dead_done,
        "live {live_done:?} dead {dead_done:?}"
    );
}

#[tokio::test]
async fn black_hole_times_out_per_attempt() {
    let (base, mut hits) = server(&[], 200, None).await;
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_url = format!("http://{}/", hole.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let tuning = Tuning {
        attempt_timeout: Duration::from_millis(100),
        queue_capacity: 10,
    };
    let n = start_tuned(
        vec![hole_url, format!("{base}/live")],
        Format::Json,
        fast(2),
        tuning,
    );
    n.send(event(EventKind::Deployed, "x"));
    let (path, _, _) = next(&mut hits).await;
    assert_eq!(path, "/live");
    assert!(n.flush(Duration::from_secs(10)).await);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "one connection per attempt"
    );
}

#[tokio::test]
async fn full_queue_drops_instead_of_waiting() {
    let gate = Arc::new(Semaphore::new(0));
    let (base, mut hits) = server(&[], 200, Some(gate.clone())).await;
    let tuning = Tuning {
        attempt_timeout: Duration::from_secs(10),
        queue_capacity: 2,
    };
    let n = start_tuned(vec![format!("{base}/h")], Format::Json, fast(1), tuning);
    // The test runtime is single-threaded: the delivery task cannot take anything
    // off the queue until this test yields, so the queue holds exactly two.
    for i in 0..5 {
        n.send(event(EventKind::Deployed, &format!("e{i}")));
    }
    assert!(!n.flush(Duration::from_millis(50)).await);
    gate.add_permits(10);
    assert!(n.flush(Duration::from_secs(5)).await);
    let mut got = Vec::new();
    while let Ok((_, body, _)) = hits.try_recv() {
        got.push(body["message"].as_str().unwrap().to_string());
    }
    assert_eq!(got, vec!["e0", "e1"]);
}

#[tokio::test]
async fn disabled_notifier_does_nothing() {
    let n = Notifier::disabled();
    assert!(!n.is_enabled());
    n.send(event(EventKind::Deployed, "x"));
    assert!(n.flush(Duration::ZERO).await);

    let none = start(Vec::new(), Format::Json, DEFAULT_RETRY);
    assert!(!none.is_enabled());
    let unusable = start(
        vec!["ftp://hooks.example/x".to_string(), "nope".to_string()],
        Format::Slack,
        DEFAULT_RETRY,
    );
    assert!(!unusable.is_enabled());
    unusable.send(event(EventKind::Deployed, "x"));
    assert!(unusable.flush(Duration::ZERO).await);
    assert_eq!(format!("{unusable:?}"), "Notifier { urls: 0 }");
}

#[tokio::test]
async fn https_event_arrives_trusting_the_ca_file() {
    let pki = crate::http_client::tls_fixture::TestPki::new();
    let (tx, mut hits) = mpsc::unbounded_channel();
    let state = Hook {
        script: Arc::new(Mutex::new(VecDeque::new())),
        fallback: 200,
        hits: tx,
        gate: None,
    };
    let app = Router::new()
        .route("/{*path}", post(hook))
        .with_state(state);
    let addr = pki.serve(app).await;
    let url = format!("https://localhost:{}/hooks/tls", addr.port());
    let config = |ca_file| NotifyConfig {
        urls: vec![url.clone()],
        format: Format::Json,
        retry: fast(2),
        ca_file,
        secret: None,
        repository: None,
    };
    let n = Notifier::start(config(Some(pki.ca_file.clone()))).unwrap();
    let e = event(EventKind::Deployed, "over TLS");
    n.send(e.clone());
    let (path, body, _) = next(&mut hits).await;
    assert_eq!(path, "/hooks/tls");
    assert_eq!(body, payload(&e, Format::Json, ""));
    assert!(n.flush(Duration::from_secs(5)).await);

    // Without the CA file the certificate is not trusted: nothing arrives.
    let untrusting = Notifier::start(config(None)).unwrap();
    untrusting.send(event(EventKind::Deployed, "not over TLS"));
    assert!(untrusting.flush(Duration::from_secs(10)).await);
    assert!(hits.try_recv().is_err(), "an untrusted server got an event");
}

#[test]
fn an_unreadable_ca_file_stops_the_start() {
    let config = NotifyConfig {
        urls: vec!["https://hooks.example/x".into()],
        format: Format::Json,
        retry: DEFAULT_RETRY,
        ca_file: Some("/nonexistent/ca.pem".into()),
        secret: None,
        repository: None,
    };
    let e = Notifier::start(config).unwrap_err();
    assert!(e.to_string().starts_with("/nonexistent/ca.pem: "), "{e}");
}

/// A loopback server that answers the first request with `raw` bytes, whatever it
/// asks, and hands back what it received.
async fn raw_server(raw: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = vec![0u8; 4096];
        // Head and the two-byte body `{}`.
        while !request.ends_with(b"\r\n\r\n{}") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "request cut short");
            request.extend_from_slice(&buf[..n]);
        }
        socket.write_all(raw).await.unwrap();
        socket.shutdown().await.unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (format!("http://{addr}/p"), server)
}

fn client() -> HttpClient {
    HttpClient::new(&ClientOptions::tcp(Duration::from_secs(5))).unwrap()
}

#[tokio::test]
async fn the_status_after_an_interim_answer_counts() {
    let (url, server) =
        raw_server(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n").await;
    let target = Target::parse(&url).unwrap();
    http::post(&client(), &target, b"{}", &[]).await.unwrap();
    let request = server.await.unwrap();
    assert!(request.starts_with("POST /p HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains("content-type: application/json\r\n"),
        "{request}"
    );
    assert!(request.contains("content-length: 2\r\n"), "{request}");
}

#[tokio::test]
async fn a_failed_answer_says_its_status_and_body() {
    let (url, _server) =
        raw_server(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 16\r\n\r\ninvalid_payload\n")
            .await;
    let target = Target::parse(&url).unwrap();
    let e = http::post(&client(), &target, b"{}", &[])
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "HTTP 400: invalid_payload");
}

#[tokio::test]
async fn garbage_is_a_failed_exchange() {
    let (url, _server) = raw_server(b"SSH-2.0-OpenSSH\r\n").await;
    let target = Target::parse(&url).unwrap();
    let e = http::post(&client(), &target, b"{}", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(e, http::DeliveryError::Request(RequestError::Exchange(_))),
        "{e}"
    );
}

#[test]
fn check_url_takes_http_and_https() {
    assert_eq!(check_url("http://127.0.0.1:9/x", Format::Json), Ok(()));
    assert_eq!(
        check_url("https://hooks.slack.com/services/T/B/X", Format::Slack),
        Ok(())
    );
    let err = check_url("ftp://hooks.example/x", Format::Json).unwrap_err();
    assert_eq!(
        err.to_string(),
        "notification URLs must start with http:// or https://"
    );
}

#[test]
fn deployed_once_per_commit_and_service() {
    let mut once = DeployedOnce::new();
    assert!(once.first_time("c1", "web"));
    assert!(!once.first_time("c1", "web"));
    assert!(once.first_time("c1", "db"));
    assert!(once.first_time("c2", "web"));
    assert!(!once.first_time("c2", "web"));
    assert!(!once.first_time("c1", "db"));
}

#[test]
fn deployed_once_stays_bounded() {
    let mut once = DeployedOnce::new();
    for i in 0..DEPLOYED_ONCE_CAPACITY + 10 {
        assert!(once.first_time(&format!("c{i}"), "web"));
    }
    assert_eq!(once.seen.len(), DEPLOYED_ONCE_CAPACITY);
    assert!(!once.first_time(&format!("c{}", DEPLOYED_ONCE_CAPACITY + 9), "web"));
    assert!(once.first_time("c0", "web"), "the oldest was forgotten");
}

#[test]
fn the_default_retry_is_two_seconds_doubling_to_a_minute_five_attempts() {
    let delays: Vec<Duration> = DEFAULT_RETRY.schedule().collect();
    assert_eq!(delays.len(), 4, "5 attempts mean 4 waits");
    for (d, base) in delays.iter().zip([2.0, 4.0, 8.0, 16.0]) {
        let s = d.as_secs_f64();
        assert!(s >= base * 0.9 && s <= base * 1.1, "{s} vs {base}");
    }
    assert_eq!(DEFAULT_RETRY.max, Duration::from_secs(60));
}

#[test]
fn a_config_shows_urls_by_format_and_host_never_their_token_or_the_secret() {
    let config = NotifyConfig {
        urls: vec![
            "slack=https://hooks.slack.com/services/T/B/slack-tok-9d1e".to_string(),
            "https://relay.local/hooks/json-tok-9d1e?token=q-tok-9d1e".to_string(),
        ],
        format: Format::Json,
        retry: DEFAULT_RETRY,
        ca_file: None,
        secret: Some(Secret::new(b"hmac-secret-9d1e-0123456789")),
        repository: Some("https://deploy:repo-tok-9d1e@github.com/acme/shop.git".into()),
    };
    let shown = format!("{config:?}");
    assert!(shown.contains("slack=https://hooks.slack.com/…"), "{shown}");
    assert!(shown.contains("https://relay.local/…"), "{shown}");
    assert!(shown.contains("Secret(***)"), "{shown}");
    for secret in ["tok-9d1e", "hmac-secret"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}
