pub(crate) mod server;

use std::time::Duration;

use super::*;
use server::{ApiHost, Seen};

const SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const TOKEN: &str = "glpat-test-token-1d9e";

fn remote(host: &str, path: &str) -> Remote {
    Remote {
        host: host.into(),
        path: path.into(),
    }
}

#[test]
fn remotes_name_their_host_and_path_without_credentials() {
    let ok = |url: &str, host: &str, path: &str| {
        assert_eq!(Remote::parse(url), Ok(remote(host, path)), "{url}");
    };
    ok(
        "https://github.com/acme/shop.git",
        "github.com",
        "acme/shop",
    );
    ok(
        "https://x-access-token:s3cr3t@GitHub.com/acme/shop",
        "github.com",
        "acme/shop",
    );
    ok(
        "https://gitlab.example:8443/group/sub/shop.git/",
        "gitlab.example",
        "group/sub/shop",
    );
    ok(
        "ssh://git@gitea.example:2222/acme/shop.git",
        "gitea.example",
        "acme/shop",
    );
    ok("git@github.com:acme/shop.git", "github.com", "acme/shop");
    ok("gitlab.example:group/shop", "gitlab.example", "group/shop");
    assert_eq!(Remote::parse("/srv/git/shop"), Err(RemoteError::Local));
    assert_eq!(
        Remote::parse("file:///srv/git/shop"),
        Err(RemoteError::Local)
    );
    assert_eq!(Remote::parse("./shop:x/y"), Err(RemoteError::Local));
    assert!(matches!(
        Remote::parse("https://github.com/acme"),
        Err(RemoteError::Path(_))
    ));
    assert!(matches!(
        Remote::parse("https://github.com/acme/../x"),
        Err(RemoteError::Path(_))
    ));
    assert_eq!(remote("h", "a/b").owner_repo(), Some(("a", "b")));
    assert_eq!(remote("h", "a/b/c").owner_repo(), None);
}

#[test]
fn each_api_gets_its_path_header_and_body() {
    let target = |provider, path: &str| Target {
        provider,
        base: "https://api.example/".into(),
        remote: remote("git.example", path),
        token: Token(TOKEN.into()),
        context: "berth/web-1".into(),
    };
    let r = target(Provider::GitHub, "acme/shop").request(SHA, State::Failure, "api: pull failed");
    assert_eq!(
        r.url,
        format!("https://api.example/repos/acme/shop/statuses/{SHA}")
    );
    assert_eq!(
        (r.auth_header, r.auth_value.0.as_str()),
        ("authorization", "Bearer glpat-test-token-1d9e")
    );
    assert_eq!(r.content_type, "application/json");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"state": "failure", "description": "api: pull failed", "context": "berth/web-1"})
    );

    let r = target(Provider::GitLab, "group/sub/shop").request(SHA, State::Failure, "a b&c");
    assert_eq!(
        r.url,
        format!("https://api.example/api/v4/projects/group%2Fsub%2Fshop/statuses/{SHA}")
    );
    assert_eq!(
        (r.auth_header, r.auth_value.0.as_str()),
        ("private-token", TOKEN)
    );
    assert_eq!(r.content_type, "application/x-www-form-urlencoded");
    assert_eq!(
        String::from_utf8(r.body).unwrap(),
        "state=failed&name=berth%2Fweb-1&description=a+b%26c"
    );

    let r = target(Provider::Gitea, "acme/shop").request(SHA, State::Pending, "deploying");
    assert_eq!(
        r.url,
        format!("https://api.example/api/v1/repos/acme/shop/statuses/{SHA}")
    );
    assert_eq!(
        (r.auth_header, r.auth_value.0.as_str()),
        ("authorization", "token glpat-test-token-1d9e")
    );
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"state": "pending", "context": "berth/web-1", "description": "deploying"})
    );
    // Nothing in the path escapes its segment.
    let r = target(Provider::GitHub, "ac%2Fme/sh?op").request("../x", State::Success, "");
    assert_eq!(
        r.url,
        "https://api.example/repos/ac%252Fme/sh%3Fop/statuses/..%2Fx"
    );
}

#[test]
fn descriptions_are_the_first_line_masked_and_cut_to_the_limit() {
    assert_eq!(
        describe("\n  api: health gate failed\nstack trace", 140),
        "api: health gate failed"
    );
    let long = "x".repeat(300);
    let cut = describe(&long, 140);
    assert_eq!(cut.chars().count(), 140);
    assert!(cut.ends_with('…'));
    let masked = describe("pull https://user:hunter2@registry.example/app failed", 140);
    assert!(!masked.contains("hunter2"), "{masked}");
    assert_eq!(Provider::GitHub.description_limit(), 140);
}

#[test]
fn hosts_are_told_from_the_remote_and_defaults_follow() {
    assert_eq!(Provider::guess("github.com"), Some(Provider::GitHub));
    assert_eq!(Provider::guess("gitlab.com"), Some(Provider::GitLab));
    assert_eq!(
        Provider::guess("gitlab.corp.example"),
        Some(Provider::GitLab)
    );
    assert_eq!(Provider::guess("codeberg.org"), Some(Provider::Gitea));
    assert_eq!(Provider::guess("git.example"), None);
    assert_eq!(
        Provider::GitHub.default_base("github.com"),
        "https://api.github.com"
    );
    assert_eq!(
        Provider::GitHub.default_base("ghe.corp"),
        "https://ghe.corp/api/v3"
    );
    assert_eq!(
        Provider::GitLab.default_base("gitlab.com"),
        "https://gitlab.com"
    );
}

fn token_file(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, text).unwrap();
    p
}

fn setup(choice: Choice, repo: &str, token: Option<std::path::PathBuf>) -> Setup {
    Setup {
        choice,
        repo_url: repo.into(),
        token_file: token,
        api_url: None,
        host_name: "web-1".into(),
    }
}

#[test]
fn setup_errors_say_what_and_what_to_do_and_never_quote_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(dir.path(), &format!("{TOKEN}\n"));
    let t = target(&setup(
        Choice::Auto,
        "git@gitlab.com:group/sub/shop.git",
        Some(token.clone()),
    ))
    .unwrap();
    assert_eq!(t.provider, Provider::GitLab);
    assert_eq!(t.base, "https://gitlab.com");
    assert_eq!(t.context, "berth/web-1");
    assert_eq!(t.token.0, TOKEN);
    assert!(!format!("{t:?}").contains(TOKEN), "{t:?}");

    let e = target(&setup(
        Choice::Auto,
        "https://git.example/acme/shop",
        Some(token.clone()),
    ))
    .unwrap_err();
    assert!(e.contains("--git-status github|gitlab|gitea"), "{e}");
    let e = target(&setup(
        Choice::Is(Provider::GitHub),
        "https://ghe/a/b/c",
        Some(token.clone()),
    ))
    .unwrap_err();
    assert!(e.contains("owner/repository"), "{e}");
    let e = target(&setup(
        Choice::Is(Provider::GitHub),
        "/srv/git/shop",
        Some(token.clone()),
    ))
    .unwrap_err();
    assert!(e.contains("local"), "{e}");
    let e = target(&setup(
        Choice::Is(Provider::GitHub),
        "https://github.com/a/b",
        None,
    ))
    .unwrap_err();
    assert!(e.contains("--git-status-token-file"), "{e}");
    let empty = token_file(dir.path(), "  \n");
    let e = target(&setup(
        Choice::Is(Provider::GitHub),
        "https://github.com/a/b",
        Some(empty),
    ))
    .unwrap_err();
    assert!(e.contains("is empty"), "{e}");
    let two = token_file(dir.path(), &format!("{TOKEN}\nsecond"));
    let e = target(&setup(
        Choice::Is(Provider::GitHub),
        "https://github.com/a/b",
        Some(two),
    ))
    .unwrap_err();
    assert!(
        e.contains("more than one line") && !e.contains(TOKEN),
        "{e}"
    );
    let mut s = setup(
        Choice::Is(Provider::GitHub),
        "https://github.com/a/b",
        Some(token_file(dir.path(), TOKEN)),
    );
    s.api_url = Some("https://user:pw@ghe.corp/api/v3".into());
    let e = target(&s).unwrap_err();
    assert!(
        e.contains("--git-status-token-file") && !e.contains("pw@"),
        "{e}"
    );
    s.api_url = Some("ftp://ghe.corp".into());
    assert!(target(&s).unwrap_err().contains("http:// or https://"));
}

/// A reporter to `host`, retrying every 20 ms.
fn reporter(host: &ApiHost, provider: Provider, path: &str) -> CommitStatus {
    let target = Target {
        provider,
        base: host.base(),
        remote: remote("git.example", path),
        token: Token(TOKEN.into()),
        context: "berth/web-1".into(),
    };
    let retry = crate::retry::RetryPolicy {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(40),
        max_attempts: 6,
        jitter: 0.0,
    };
    CommitStatus::start(target, retry, None).unwrap()
}

fn seen(state: &str, description: &str) -> Seen {
    Seen {
        sha: SHA.into(),
        state: state.into(),
        context: "berth/web-1".into(),
        description: description.into(),
    }
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn each_api_takes_pending_then_success_and_pending_then_failure() {
    let other = "0123456789abcdef0123456789abcdef01234567";
    for (provider, path, failed) in [
        (Provider::GitHub, "acme/shop", "failure"),
        (Provider::GitLab, "group/sub/shop", "failed"),
        (Provider::Gitea, "acme/shop", "failure"),
    ] {
        let host = ApiHost::start(provider, TOKEN, path, 0).await;
        let r = reporter(&host, provider, path);
        r.starting(SHA);
        r.converged(SHA);
        r.starting(other);
        r.failed(
            other,
            "api: the health gate failed after 30 s\nroll back: done",
        );
        assert!(r.flush(WAIT).await, "{provider:?}");
        let mut failure = seen(failed, "api: the health gate failed after 30 s");
        failure.sha = other.into();
        let mut pending = seen("pending", "deploying");
        let expected = vec![
            seen("pending", "deploying"),
            seen("success", "deployed"),
            {
                pending.sha = other.into();
                pending
            },
            failure,
        ];
        assert_eq!(host.seen(), expected, "{provider:?}");
        assert_eq!(host.refused(), Vec::<String>::new(), "{provider:?}");
        assert_eq!(host.requests(), 4, "{provider:?}");
    }
}

#[tokio::test]
async fn a_status_already_sent_is_not_sent_again() {
    let host = ApiHost::start(Provider::GitHub, TOKEN, "acme/shop", 0).await;
    let r = reporter(&host, Provider::GitHub, "acme/shop");
    r.starting(SHA);
    r.converged(SHA);
    // Later reconciles of the same commit.
    r.starting(SHA);
    r.converged(SHA);
    r.converged(SHA);
    assert!(r.flush(WAIT).await);
    assert_eq!(
        host.seen(),
        vec![seen("pending", "deploying"), seen("success", "deployed")]
    );
}

#[tokio::test]
async fn a_host_that_fails_is_retried_until_it_takes_the_status_in_order() {
    let host = ApiHost::start(Provider::Gitea, TOKEN, "acme/shop", 3).await;
    let r = reporter(&host, Provider::Gitea, "acme/shop");
    r.starting(SHA);
    r.converged(SHA);
    let got = host.wait_seen(2, WAIT).await;
    assert_eq!(
        got,
        vec![seen("pending", "deploying"), seen("success", "deployed")]
    );
    // Three 500s, then each status once.
    assert_eq!(host.requests(), 5);
}

#[tokio::test]
async fn a_refused_token_is_not_retried_and_a_description_fits_githubs_limit() {
    let host = ApiHost::start(Provider::GitHub, "the-right-token", "acme/shop", 0).await;
    let r = reporter(&host, Provider::GitHub, "acme/shop");
    r.failed(SHA, "x");
    assert!(r.flush(WAIT).await);
    assert_eq!(host.requests(), 1, "a 401 is not retried");
    assert_eq!(host.refused(), vec!["bad credentials".to_string()]);

    let host = ApiHost::start(Provider::GitHub, TOKEN, "acme/shop", 0).await;
    let r = reporter(&host, Provider::GitHub, "acme/shop");
    r.failed(SHA, &format!("api: {}", "é".repeat(400)));
    assert!(r.flush(WAIT).await);
    let got = host.seen();
    assert_eq!(got.len(), 1, "{:?}", host.refused());
    assert_eq!(got[0].description.chars().count(), 140);
}

#[tokio::test]
async fn a_disabled_reporter_sends_nothing_and_flushes_at_once() {
    let r = CommitStatus::disabled();
    r.starting(SHA);
    r.failed(SHA, "x");
    assert!(r.flush(Duration::ZERO).await);
}

/// The log lines written while `f` runs on this thread (and the tasks it spawns on a
/// current-thread runtime).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_token_never_shows_in_the_log_whatever_the_host_answers() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // 500s, then a refusal of another token, then a host that does not answer.
    let host = ApiHost::start(Provider::GitLab, TOKEN, "group/shop", 2).await;
    let r = reporter(&host, Provider::GitLab, "group/shop");
    r.failed(SHA, "api: failed");
    assert!(r.flush(WAIT).await);
    assert_eq!(host.seen().len(), 1);
    let wrong = ApiHost::start(Provider::Gitea, "another-token", "acme/shop", 0).await;
    let r = reporter(&wrong, Provider::Gitea, "acme/shop");
    r.converged(SHA);
    assert!(r.flush(WAIT).await);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let target = Target {
        provider: Provider::GitHub,
        base: format!("http://127.0.0.1:{port}"),
        remote: remote("github.com", "acme/shop"),
        token: Token(TOKEN.into()),
        context: "berth/web-1".into(),
    };
    let retry = crate::retry::RetryPolicy {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(5),
        max_attempts: 2,
        jitter: 0.0,
    };
    let r = CommitStatus::start(target, retry, None).unwrap();
    r.starting(SHA);
    assert!(r.flush(WAIT).await);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("commit status failed; retrying"), "{log}");
    assert!(
        log.contains("commit status refused by the git host"),
        "{log}"
    );
    assert!(log.contains("commit status given up"), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
}
