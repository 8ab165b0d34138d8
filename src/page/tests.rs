//! The page without Docker: escaping of everything a pusher writes, masking, the state
//! words, commit links, the rollout and history sections, and the answer's headers.

use std::sync::Arc;

use tokio::sync::RwLock;

use super::escape::{commit_url, esc, git_host, GitHost};
use super::sample::{deploys, service, status};
use super::*;
use crate::executor::progress::Event;
use crate::status::FailedTarget;

const XSS: &str = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&";

/// The page's text outside tags must not contain the payload's raw markup.
fn assert_no_raw_markup(html: &str) {
    assert!(!html.contains("<script>alert"), "raw script in page");
    assert!(!html.contains("<img src=x"), "raw img in page");
    assert!(!html.contains("onerror=alert(2)>"), "raw attribute in page");
    // Only the page's own script element.
    assert_eq!(html.matches("<script").count(), 1);
}

#[test]
fn times_are_shown_to_the_second() {
    assert_eq!(
        super::escape::when("2026-11-29T22:25:39.233968171Z"),
        "2026-11-29T22:25:39Z"
    );
    assert_eq!(
        super::escape::when("2026-11-29T22:25:39Z"),
        "2026-11-29T22:25:39Z"
    );
    assert_eq!(super::escape::when("<b>"), "&lt;b&gt;");
}

#[test]
fn escaping_covers_markup_quotes_and_controls() {
    assert_eq!(
        esc("<a href=\"x\" title='y'>&</a>"),
        "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
    );
    assert_eq!(esc("a\u{1b}[31mb"), "a\\u{1b}[31mb");
    assert_eq!(esc("héllo\n"), "héllo\n");
}

#[test]
fn a_hostile_commit_message_service_name_error_and_image_are_shown_escaped() {
    let mut st = status(1);
    let c = st.applied_commit.as_mut().unwrap();
    c.summary = XSS.into();
    c.author = XSS.into();
    let mut s = service(XSS, &[(XSS, 1)], 0, 1);
    s.last_error = Some(XSS.into());
    s.last_outcome = "failed".into();
    st.services.insert(XSS.into(), s);
    st.rollout.apply(&Event::ServiceStarted {
        service: XSS.into(),
        image: XSS.into(),
    });
    st.rollout.apply(&Event::ReplicaStarted {
        service: XSS.into(),
        slot: 1,
        container: XSS.into(),
    });
    st.branch = XSS.into();
    let mut history = deploys(2, &[XSS]);
    history[0].services[0].error = Some(XSS.into());
    history[0].migrations[0].migration = XSS.into();
    let html = render_page(&st, &history, None, 0);
    assert_no_raw_markup(&html);
    assert!(html.contains(
        "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;"
    ));
    // In the SVG too.
    let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
    assert!(svg.contains("&lt;script&gt;"));
}

#[test]
fn credentials_in_the_repository_url_and_errors_are_masked() {
    let mut st = status(1);
    st.repo = "https://deploy:hunter2-url-password@git.example/acme/deploy.git".into();
    st.last_error = Some(
        "fetch https://deploy:hunter2-url-password@git.example/acme/deploy.git: refused".into(),
    );
    st.head = Some("ffff".into());
    let mut history = deploys(1, &["api"]);
    history[0].services[0].error =
        Some("pull https://u:hunter2-url-password@registry.example/v2/: denied".into());
    let html = render_page(&st, &history, None, 0);
    assert!(!html.contains("hunter2"), "{html}");
    assert!(html.contains("git.example/acme/deploy.git"));
}

#[test]
fn the_state_words() {
    let st = status(0);
    let ok = service("app:v2", &[("app:v2", 2)], 2, 2);
    assert_eq!(render::state_of("a", &ok, &st), ("in sync", "ok"));
    let mixed = service("app:v2", &[("app:v1", 1), ("app:v2", 1)], 2, 2);
    assert_eq!(render::state_of("a", &mixed, &st).0, "rolling out");
    let mut paused = ok.clone();
    paused.paused = true;
    assert_eq!(render::state_of("a", &paused, &st).0, "paused");
    let mut held = ok.clone();
    held.failed_target = Some(FailedTarget {
        service: "a".into(),
        spec: "abc".into(),
        attempts: 3,
        given_up: true,
    });
    assert_eq!(render::state_of("a", &held, &st).0, "failed (held)");
    let mut waiting = ok.clone();
    waiting.last_outcome = "waiting".into();
    assert_eq!(render::state_of("a", &waiting, &st).0, "waiting");
    let mut moving = st.clone();
    moving.rollout.apply(&Event::ServiceStarted {
        service: "a".into(),
        image: "app:v3".into(),
    });
    assert_eq!(render::state_of("a", &ok, &moving).0, "rolling out");
    let mut all = st.clone();
    all.paused = true;
    assert_eq!(render::state_of("a", &ok, &all).0, "paused");
}

#[test]
fn failed_targets_show_their_attempts() {
    let mut st = status(0);
    let mut s = service("app:v2", &[("app:v1", 2)], 2, 2);
    s.failed_target = Some(FailedTarget {
        service: "api".into(),
        spec: "abc".into(),
        attempts: 3,
        given_up: true,
    });
    st.services.insert("api".into(), s);
    let html = render_live(&st, &[], None, 0);
    assert!(html.contains("failed (held)"));
    assert!(html.contains("3 attempts, given up until the desired state changes"));
}

#[test]
fn commit_links_for_each_git_host_and_none_for_the_unknown() {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let cases = [
        (
            "https://github.com/acme/deploy.git",
            "https://github.com/acme/deploy/commit/",
        ),
        (
            "git@github.com:acme/deploy.git",
            "https://github.com/acme/deploy/commit/",
        ),
        (
            "ssh://git@github.com:22/acme/deploy",
            "https://github.com/acme/deploy/commit/",
        ),
        (
            "https://gitlab.com/acme/group/deploy.git",
            "https://gitlab.com/acme/group/deploy/-/commit/",
        ),
        (
            "git@gitlab.example.org:ops/deploy.git",
            "https://gitlab.example.org/ops/deploy/-/commit/",
        ),
        (
            "https://codeberg.org/acme/deploy",
            "https://codeberg.org/acme/deploy/commit/",
        ),
        (
            "https://gitea.example.org/acme/deploy.git",
            "https://gitea.example.org/acme/deploy/commit/",
        ),
        (
            "git@bitbucket.org:acme/deploy.git",
            "https://bitbucket.org/acme/deploy/commits/",
        ),
        (
            "https://***@github.com/acme/deploy.git",
            "https://github.com/acme/deploy/commit/",
        ),
    ];
    for (remote, prefix) in cases {
        assert_eq!(
            commit_url(remote, sha),
            Some(format!("{prefix}{sha}")),
            "{remote}"
        );
    }
    assert_eq!(git_host("git@gitlab.com:a/b.git"), Some(GitHost::GitLab));
    for remote in [
        "/srv/git/deploy.git",
        "file:///srv/git/deploy.git",
        "https://git.example.org/acme/deploy.git",
        "https://github.com/acme",
        "https://github.com/acme/../../evil",
        "https://github.com/acme/de\"ploy",
        "javascript:alert(1)//github.com/a/b",
    ] {
        assert_eq!(commit_url(remote, sha), None, "{remote}");
    }
    assert_eq!(
        commit_url("https://github.com/a/b", "not-hex\"><script>"),
        None
    );
}

#[test]
fn the_applied_commit_links_to_its_host_and_a_refused_head_says_why() {
    let mut st = status(0);
    st.head = Some("feedfacefeedfacefeedfacefeedfacefeedface".into());
    st.last_error = Some("services.api.image: empty".into());
    let html = render_live(&st, &[], None, 0);
    assert!(html.contains(
        "<a href=\"https://github.com/acme/deploy/commit/0123456789abcdef0123456789abcdef01234567\"><code>0123456789ab</code></a>"
    ));
    assert!(html.contains("Roll api to v2"));
    assert!(html.contains("by Ada"));
    assert!(html.contains("<code>feedfacefeed</code> refused: services.api.image: empty"));
}

#[test]
fn a_rollout_in_flight_shows_the_next_replica_its_deadline_and_the_draining_one() {
    let mut st = status(1);
    let now = 1_800_000_000_000;
    for e in [
        Event::ServiceStarted {
            service: "svc-000".into(),
            image: "app:v3".into(),
        },
        Event::ReplicaStarted {
            service: "svc-000".into(),
            slot: 1,
            container: "shop-svc-000-1-next".into(),
        },
        Event::Gate {
            service: "svc-000".into(),
            slot: 1,
            container: "shop-svc-000-1-next".into(),
            deadline_ms: now + 29_500,
            monitor_ms: 5_000,
        },
        Event::Draining {
            service: "svc-000".into(),
            containers: vec!["shop-svc-000-2".into()],
            until_ms: now + 1_000,
        },
    ] {
        st.rollout.apply(&e);
    }
    let html = render_live(&st, &[], None, now);
    assert!(html.contains("<code class=\"replica\">shop-svc-000-1-next</code>"));
    assert!(html.contains(&format!(
        "data-until=\"{}\">30s</span>, then for 5s",
        now + 29_500
    )));
    assert!(html.contains("draining <code>shop-svc-000-2</code>"));
    assert!(html.contains("rolling out"));
    st.rollout.apply(&Event::ServiceDone {
        service: "svc-000".into(),
        outcome: "converged".into(),
    });
    assert!(render_live(&st, &[], None, now).contains("Nothing under way."));
}

#[test]
fn the_history_draws_one_mark_per_service_deploy_each_opening_its_details() {
    let html = render_live(&status(0), &deploys(4, &["api", "worker"]), None, 0);
    assert_eq!(html.matches("<circle").count(), 8);
    assert_eq!(html.matches("<details id=\"deploy-").count(), 4);
    let mark = format!(
        "<a href=\"#deploy-3\"><circle cx=\"235\" cy=\"20\" r=\"7\" fill=\"{}\"><title>#3 api: rolled-back</title>",
        history::colour("rolled-back")
    );
    assert!(html.contains(&mark), "{html}");
    assert!(html.contains("<details id=\"deploy-3\""));
    assert!(html.contains("<code>app:v1</code></td><td><code>app:v2</code>"));
    assert!(html.contains("migration <code>schema</code> succeeded in 1.5s"));
    assert!(html.contains(
        "<blockquote class=\"error\">new replica shop-api-1-next was not healthy</blockquote>"
    ));
    // Only the newest are shown.
    let many = render_live(&status(0), &deploys(100, &["api"]), None, 0);
    assert_eq!(many.matches("<circle").count(), history::SHOWN);
}

#[test]
fn the_policy_allows_exactly_the_page_script_and_style() {
    let html = render_page(&status(2), &[], None, 0);
    let script = &html[html.find("<script>").unwrap() + 8..html.find("</script>").unwrap()];
    let style = &html[html.find("<style>").unwrap() + 7..html.find("</style>").unwrap()];
    let b64 =
        |t: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(t.as_bytes()));
    assert!(CSP.contains(&format!("script-src 'sha256-{}'", b64(script))));
    assert!(CSP.contains(&format!("style-src 'sha256-{}'", b64(style))));
    assert!(CSP.starts_with("default-src 'none';"));
    assert!(CSP.contains("connect-src 'self'"));
    assert!(CSP.contains("img-src 'self' data:"));
    // No inline handlers or style attributes, which the policy would block.
    assert!(!html.contains(" style=\""));
    assert!(!html.contains(" onclick="));
    assert!(html.contains("<noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript>"));
}

async fn serve(st: AgentStatus) -> (String, CancellationToken, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = crate::ledger::SqliteLedger::open(&dir.path().join("ledger.db")).unwrap();
    for d in deploys(3, &["svc-000"]).into_iter().rev() {
        Ledger::record_deploy(&ledger, &d).await.unwrap();
    }
    let shutdown = CancellationToken::new();
    let state = PageState::new(
        Arc::new(RwLock::new(st)),
        Arc::new(ledger),
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    (format!("http://{addr}"), shutdown, dir)
}

#[tokio::test]
async fn the_page_is_answered_with_its_policy_and_only_to_get() {
    let (base, shutdown, _dir) = serve(status(2)).await;
    let client = reqwest::Client::new();
    let r = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"].to_str().unwrap(), CSP.as_str());
    let body = r.text().await.unwrap();
    assert!(body.contains("data-service=\"svc-001\""));
    assert!(
        body.contains("<details id=\"deploy-3\""),
        "history from the ledger"
    );
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let r = client
            .request(method.clone(), format!("{base}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        let r = client
            .request(method.clone(), format!("{base}/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
    }
    shutdown.cancel();
}

#[tokio::test]
async fn the_event_stream_sends_the_live_part_at_once_and_ends_with_the_agent() {
    let (base, shutdown, _dir) = serve(status(1)).await;
    let r = reqwest::get(format!("{base}/events")).await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let mut r = r;
    let mut seen = String::new();
    while !seen.contains("Nothing under way") {
        let chunk = r.chunk().await.unwrap().expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.starts_with("event: live\ndata: "), "{seen}");
    assert!(seen.contains("data-service=\"svc-000\""));
    shutdown.cancel();
    // The stream ends: the agent's shutdown is not held by an open page.
    while let Ok(Some(_)) = r.chunk().await {}
}

/// Two hosts of a fleet: each host's newest deploy of each service, the canary, a
/// lease held now and a migration under way, every name escaped.
#[test]
fn the_fleet_matrix_shows_each_hosts_release_the_canary_leases_and_migrations() {
    let mut st = status(0);
    st.host.name = "web-1".into();
    let mut api = service("registry.example/shop/app:v2", &[("app:v2", 2)], 2, 2);
    api.canary = Some("web-1".into());
    st.services.insert("api".into(), api);
    st.started_migrations.push(crate::ledger::StartedMigration {
        project: "shop".into(),
        migration: "schema".into(),
        digest: "sha256:abc".into(),
        host: XSS.into(),
        container: "shop-schema-1".into(),
        since: "2026-11-29T21:00:00Z".into(),
    });
    // Newest first, as the ledger answers: web-1 runs v2, web-2 still v1 and holds a
    // lease; the older v0 deploy of web-1 is not its current release.
    let mut newest = deploys(3, &["api"]);
    newest[0].host = Some("web-1".into());
    newest[0].services[0].to = Some("registry.example/shop/app:v2".into());
    newest[0].services[0].outcome = "converged".into();
    newest[1].host = Some("web-2".into());
    newest[1].services[0].to = Some("registry.example/shop/app:v1".into());
    newest[1].services[0].outcome = "converged".into();
    newest[2].host = Some("web-1".into());
    newest[2].services[0].to = Some("registry.example/shop/app:v0".into());
    let view = FleetView {
        deploys: newest,
        leases: vec![crate::ledger::LeaseHeld {
            service: "api".into(),
            host: "web-2".into(),
            expires_at: "2026-11-29T21:05:00Z".into(),
        }],
    };
    let html = render_live(&st, &[], Some(&view), 0);
    let cell = |host: &str| {
        let start = html
            .find(&format!("<td data-host=\"{host}\" data-service=\"api\">"))
            .unwrap_or_else(|| panic!("no cell for {host}:\n{html}"));
        let end = start + html[start..].find("</td>").unwrap();
        html[start..end].to_string()
    };
    let one = cell("web-1");
    assert!(one.contains("<code>app:v2</code>"), "{one}");
    assert!(one.contains("canary"), "{one}");
    assert!(!one.contains("lease"), "{one}");
    let two = cell("web-2");
    assert!(two.contains("<code>app:v1</code>"), "{two}");
    assert!(two.contains("lease until 2026-11-29T21:05:00Z"), "{two}");
    assert!(!two.contains("canary"), "{two}");
    assert!(html.contains("web-1 <span class=\"attempts\">(this host)</span>"));
    assert!(html.contains("<th data-service=\"api\">api<div class=\"attempts\">canary web-1</div>"));
    assert!(
        html.contains("<code>schema</code> on &lt;script&gt;"),
        "{html}"
    );
    // The migration's host is a row too, escaped like everything else.
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<img src=x"));
    // One host alone (no shared ledger) has no fleet section.
    assert!(!render_live(&st, &[], None, 0).contains("id=\"fleet\""));
}
