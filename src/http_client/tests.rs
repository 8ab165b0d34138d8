use super::tls_fixture::TestPki;
use super::*;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::{TcpListener, UnixListener};

fn app() -> Router {
    Router::new()
        .route("/status", get(|| async { "{\"ok\":true}" }))
        .route(
            "/control/reconcile",
            post(|| async { (axum::http::StatusCode::ACCEPTED, "reconciling\n") }),
        )
}

async fn serve_tcp(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn client(options: &ClientOptions) -> HttpClient {
    HttpClient::new(options).unwrap()
}

#[tokio::test]
async fn get_and_post_read_status_and_body() {
    let base = serve_tcp(app()).await;
    let c = client(&ClientOptions::tcp(Duration::from_secs(5)));
    let answer = c.get(&format!("{base}/status")).await.unwrap();
    assert_eq!(
        answer,
        Answer {
            status: 200,
            body: "{\"ok\":true}".into()
        }
    );
    let answer = c.post(&format!("{base}/control/reconcile")).await.unwrap();
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (202, "reconciling\n")
    );
    let answer = c.get(&format!("{base}/nothing")).await.unwrap();
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn a_unix_socket_is_reached_whatever_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move { axum::serve(listener, app()).await });
    let c = client(&ClientOptions::unix(&path, Duration::from_secs(5)));
    let answer = c.post("http://localhost/control/reconcile").await.unwrap();
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (202, "reconciling\n")
    );

    let gone = client(&ClientOptions::unix(
        &dir.path().join("none.sock"),
        Duration::from_secs(5),
    ));
    let e = gone.get("http://localhost/status").await.unwrap_err();
    assert!(matches!(e, RequestError::Connect(_)), "{e}");
}

#[tokio::test]
async fn https_is_trusted_through_the_ca_file_only() {
    let pki = TestPki::new();
    let addr = pki.serve(app()).await;
    let url = format!("https://{addr}/status");
    let trusting = client(&ClientOptions {
        ca_file: Some(pki.ca_file.clone()),
        ..ClientOptions::tcp(Duration::from_secs(5))
    });
    assert_eq!(trusting.get(&url).await.unwrap().status, 200);
    let by_name = format!("https://localhost:{}/status", addr.port());
    assert_eq!(trusting.get(&by_name).await.unwrap().status, 200);

    let system_roots_only = client(&ClientOptions::tcp(Duration::from_secs(5)));
    let e = system_roots_only.get(&url).await.unwrap_err();
    assert!(matches!(e, RequestError::Connect(_)), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[tokio::test]
async fn errors_never_quote_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = client(&ClientOptions::tcp(Duration::from_secs(5)));
    let e = c
        .post_json(&format!("http://{addr}/hooks/s3cret"), b"{}".to_vec(), &[])
        .await
        .unwrap_err();
    assert!(matches!(e, RequestError::Connect(_)), "{e}");
    assert!(!e.to_string().contains("s3cret"), "{e}");
}

#[tokio::test]
async fn a_silent_server_is_a_timeout() {
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hole.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            held.push(socket);
        }
    });
    let c = client(&ClientOptions::tcp(Duration::from_millis(100)));
    let e = c.get(&format!("http://{addr}/")).await.unwrap_err();
    assert!(matches!(e, RequestError::Timeout(_)), "{e}");
    assert_eq!(e.to_string(), "no answer within 100 ms");
    held.abort();
}

#[test]
fn a_ca_file_must_hold_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.pem");
    let e = HttpClient::new(&ClientOptions {
        ca_file: Some(missing.clone()),
        ..ClientOptions::tcp(Duration::from_secs(1))
    })
    .unwrap_err();
    assert!(matches!(e, ClientError::CaFileUnreadable { .. }), "{e}");
    assert!(e.to_string().starts_with(&missing.display().to_string()));

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = HttpClient::new(&ClientOptions {
        ca_file: Some(empty.clone()),
        ..ClientOptions::tcp(Duration::from_secs(1))
    })
    .unwrap_err();
    assert!(matches!(e, ClientError::CaFileInvalid { .. }), "{e}");
}
