use super::*;

#[tokio::test]
async fn the_socket_is_mode_0600_and_replaces_a_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let first = ControlSocket::bind(&path).unwrap();
    drop(first);
    // The file stays behind, as after a crash; the next bind replaces it.
    assert!(path.exists());
    let socket = ControlSocket::bind(&path).unwrap();
    let mode = std::fs::metadata(socket.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, MODE);
    // No temporary name is left.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
}

#[tokio::test]
async fn something_else_at_the_path_is_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    std::fs::write(&path, "keep").unwrap();
    let e = ControlSocket::bind(&path).unwrap_err();
    assert!(e.to_string().contains("exists and is not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");
}

#[test]
fn only_the_owner_and_root_are_admitted() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let mut socket = ControlSocket::bind(&path_in(dir.path())).unwrap();
    socket.owner = 1234;
    assert!(socket.admits(0));
    assert!(socket.admits(1234));
    assert!(!socket.admits(1235));
}

#[tokio::test]
async fn posting_reads_the_agents_answer() {
    use axum::http::StatusCode;
    use axum::routing::post as route_post;
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(dir.path());
    let socket = ControlSocket::bind(&path).unwrap();
    let app = axum::Router::new()
        .route(
            "/control/reconcile",
            route_post(|| async { (StatusCode::ACCEPTED, "reconciling\n") }),
        )
        .route(
            "/refused",
            route_post(|| async { (StatusCode::FORBIDDEN, "not here\n") }),
        );
    tokio::spawn(async move { axum::serve(socket, app).await });
    let wait = Duration::from_secs(5);
    assert_eq!(
        post(&path, "/control/reconcile", wait).await.unwrap(),
        (202, "reconciling\n".to_string())
    );
    assert_eq!(
        post(&path, "/refused", wait).await.unwrap(),
        (403, "not here\n".to_string())
    );
}

#[tokio::test]
async fn posting_without_an_agent_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let e = post(
        &path_in(dir.path()),
        "/control/reconcile",
        Duration::from_secs(1),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ControlError::NoAgent { .. }), "{e}");
}
