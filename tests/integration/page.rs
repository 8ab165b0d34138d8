//! The agent's status page in a real headless Chromium, against an agent converging a
//! real stack on the engine: the overview, a rollout in progress, the history, without
//! script too; no console error, no failed request, no secret, no markup from a commit.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::agent::{http, Agent, Repo};
use crate::browser::Browser;
use crate::support::{images, wait_until, Project};
use crate::{Stack, TempDir};

/// The secrets planted: an env-file value (with a URL password inside) and a URL
/// password in a commit message.
const ENV_SECRET: &str = "envfile-page-5c2d";
const URL_PASSWORD: &str = "hunter2-page-91ab";
const COMMIT_PASSWORD: &str = "pw-commit-3e1f";
/// Markup a pusher writes into a commit message and a migration's output.
const XSS: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";

fn stack(project: &str, image: &str, env_file: &Path, exit: u8, monitor: &str) -> String {
    format!(
        "project: {project}
services:
  api:
    image: {image}
    replicas: 2
    env_file: {}
    stop_grace: 2s
    update: {{ monitor: {monitor}, deadline: 30s }}
migrations:
  migrate:
    from: api
    command: [\"sh\", \"-c\", \"echo '{XSS}' connecting to $DATABASE_URL with $API_KEY; exit {exit}\"]
    timeout: 30s
",
        env_file.display()
    )
}

/// What one run of the browser gave: the DOM (or nothing, for a screenshot) and its log.
struct Browsed {
    dom: String,
    log: String,
}

/// Runs headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=…`).
fn chromium(url: &str, args: &[&str]) -> Browsed {
    let profile = TempDir::default();
    let out = Command::new("timeout")
        .args(["120", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.path().display()),
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs (apt-get install chromium)");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed:\n{log}");
    Browsed {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        log,
    }
}

/// The page logged nothing: no console message, no policy violation, no failed load.
fn assert_clean(b: &Browsed) {
    let bad: Vec<&str> = b
        .log
        .lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains("Refused to")
                || l.contains("Content Security Policy")
                || l.contains("net::ERR")
                || l.contains("Failed to load")
        })
        .collect();
    assert!(bad.is_empty(), "the page logged:\n{}", bad.join("\n"));
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [ENV_SECRET, URL_PASSWORD, COMMIT_PASSWORD] {
        assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
    }
    // The pusher's markup is text, never elements.
    assert!(
        !text.contains("<img src=x"),
        "raw markup in {what}:\n{text}"
    );
    assert!(
        !text.contains("<script>alert"),
        "raw script in {what}:\n{text}"
    );
}

/// The first event of `/events`, read off the wire.
fn first_event(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let done = |seen: &[u8]| {
        let text = String::from_utf8_lossy(seen);
        text.split_once("event: live\n")
            .is_some_and(|(_, event)| event.contains("\n\n"))
    };
    while !done(&seen) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream closed");
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// Where screenshots go when asked for (`BERTH_SCREENSHOTS=docs`), else nowhere.
fn screenshot(url: &str, name: &str) {
    let Ok(dir) = std::env::var("BERTH_SCREENSHOTS") else {
        return;
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(name);
    let shot = chromium(
        url,
        &[
            &format!("--screenshot={}", path.display()),
            "--window-size=1280,900",
            "--hide-scrollbars",
        ],
    );
    assert_clean(&shot);
    assert!(path.exists(), "{}", shot.log);
}

/// Resolves true once the page shows a `-next` replica (false after a minute).
const NEXT_SHOWN: &str = "new Promise(done => {
  const shown = () => [...document.querySelectorAll('code.replica')]
    .some(c => c.textContent.endsWith('-next'));
  if (shown()) { done(true); return; }
  new MutationObserver(() => { if (shown()) done(true); })
    .observe(document.body, { subtree: true, childList: true });
  setTimeout(() => done(false), 60000);
})";

fn status_has(agent: &Agent, f: impl Fn(&serde_json::Value) -> bool) -> bool {
    wait_until(Duration::from_secs(90), Duration::from_millis(100), || {
        f(&agent.status())
    })
}

#[test]
fn the_status_page_shows_the_overview_a_rollout_in_progress_and_the_history_in_a_browser() {
    let p = Project::new("page");
    let img = images();
    let s = Stack::new();
    let env_file = s.env.path().join("api.env");
    std::fs::write(
        &env_file,
        format!("DATABASE_URL=postgres://app:{URL_PASSWORD}@db/app\nAPI_KEY={ENV_SECRET}\n"),
    )
    .unwrap();
    let repo = Repo::new();
    // The first deploy's migration fails, printing both secrets and some markup.
    repo.commit(
        &stack(p.name(), &img.app_v1, &env_file, 4, "1s"),
        &format!("first {XSS} see https://deploy:{COMMIT_PASSWORD}@git.example/acme"),
    );
    let state = TempDir::default();
    let agent = repo.agent(
        state.path(),
        &[
            "--max-attempts",
            "1",
            "--env-dir",
            &s.env.path().display().to_string(),
        ],
    );
    let base = format!("http://127.0.0.1:{}/", agent.port);
    assert!(
        status_has(&agent, |st| ["failed", "held"]
            .iter()
            .any(|o| st["services"]["api"]["last_outcome"] == *o)),
        "{}",
        agent.log()
    );
    // The migration fixed: v1 converges.
    repo.commit(
        &stack(p.name(), &img.app_v1, &env_file, 0, "1s"),
        "fix the migration",
    );
    assert!(
        crate::agent::converges_to(&p, &img.app_v1, 2),
        "{}",
        agent.log()
    );
    assert!(
        status_has(&agent, |st| st["services"]["api"]["last_outcome"]
            == "in-sync"
            || st["services"]["api"]["last_outcome"] == "converged"),
        "{}",
        agent.log()
    );

    // A page open with script follows what comes next over the event stream.
    let mut live = Browser::start(true);
    live.open(&base);
    assert!(live.dom().contains("in sync"));

    // A rollout to v2 whose gates each watch for 8 s: the page is read meanwhile.
    let v2 = repo.commit(
        &stack(p.name(), &img.app_v2, &env_file, 0, "8s"),
        &format!("roll api to v2 {XSS}"),
    );
    assert!(
        status_has(&agent, |st| st["rollout"]["services"]["api"]["slots"]["1"]
            ["deadline_ms"]
            .is_u64()),
        "{}",
        agent.log()
    );
    // The open page shows the new replica without a reload.
    let shown = live.page(
        "Runtime.evaluate",
        json!({
            "expression": NEXT_SHOWN,
            "awaitPromise": true,
            "returnByValue": true,
        }),
    );
    assert_eq!(
        shown["result"]["value"],
        json!(true),
        "{shown}\n{}",
        live.dom()
    );
    assert!(live.dom().contains("data-live=\"updated\""));
    assert!(live.complaints().is_empty(), "{:?}", live.complaints());
    drop(live);

    let during = chromium(&base, &["--dump-dom"]);
    assert_clean(&during);
    assert_no_secret("the page during the rollout", &during.dom);
    let dom = &during.dom;
    assert!(dom.contains("data-service=\"api\""), "{dom}");
    assert!(dom.contains("rolling out"), "{dom}");
    assert!(
        dom.contains(&format!(
            "<code class=\"replica\">{}-api-1-next</code>",
            p.name()
        )),
        "{dom}"
    );
    assert!(dom.contains("health gate"), "{dom}");
    assert!(dom.contains("class=\"countdown\" data-until="), "{dom}");
    assert!(dom.contains("<svg id=\"timeline\""), "{dom}");
    // The commit's markup is shown as text.
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"), "{dom}");
    screenshot(&base, "status-rollout.png");

    // The event stream carries the same, masked.
    let event = first_event(agent.port);
    assert!(event.contains("event: live"), "{event}");
    assert!(event.contains("data-service=\"api\""), "{event}");
    assert_no_secret("the event stream", &event);

    assert!(
        crate::agent::converges_to(&p, &img.app_v2, 2),
        "{}",
        agent.log()
    );
    assert!(
        status_has(&agent, |st| st["rollout"]["services"]
            .as_object()
            .is_some_and(|m| m.is_empty())
            && st["services"]["api"]["last_deploy"]["commit"] == v2.as_str()
            && st["services"]["api"]["last_deploy"]["outcome"] == "converged"),
        "{}",
        agent.log()
    );

    // After: the history has the failed deploy (its error quoted, masked), the fix and
    // the rollout, each a mark of the timeline opening its details.
    let after = chromium(&base, &["--dump-dom"]);
    assert_clean(&after);
    assert_no_secret("the page after the rollout", &after.dom);
    // Nor in the agent's log, which quotes each new commit's summary.
    let log = agent.log();
    for secret in [ENV_SECRET, URL_PASSWORD, COMMIT_PASSWORD] {
        assert!(!log.contains(secret), "{secret} in the agent's log:\n{log}");
    }
    let dom = &after.dom;
    assert!(dom.matches("<details id=\"deploy-").count() >= 3, "{dom}");
    assert!(dom.matches("<a href=\"#deploy-").count() >= 3, "{dom}");
    // The failed deploy's mark is red.
    assert!(
        dom.contains("fill=\"#c62828\"><title>#1 api: failed</title>"),
        "{dom}"
    );
    assert!(dom.contains("<blockquote class=\"error\">"), "{dom}");
    assert!(
        dom.contains("migration <code>migrate</code> succeeded"),
        "{dom}"
    );
    assert!(dom.contains("in sync"), "{dom}");
    screenshot(&format!("{base}#deploy-1"), "status-history.png");

    // Without script (what `--blink-settings=scriptEnabled=false` does, set over the
    // DevTools protocol, where the DOM can still be read): the overview all the same,
    // and the page refreshes itself.
    let mut plain = Browser::start(false);
    plain.open(&base);
    let dom = plain.dom();
    assert!(plain.complaints().is_empty(), "{:?}", plain.complaints());
    assert!(dom.contains("data-service=\"api\""), "{dom}");
    assert!(dom.contains("in sync"), "{dom}");
    assert!(dom.contains("<svg id=\"timeline\""), "{dom}");
    assert!(dom.contains("http-equiv=\"refresh\""), "{dom}");
    assert!(!dom.contains("data-live="), "the script ran: {dom}");

    // The raw answers too, and only GET.
    let (code, html) = http(agent.port, "GET", "/", &[], b"").unwrap();
    assert_eq!(code, 200);
    assert_no_secret("GET /", &html);
    let (code, _) = http(agent.port, "POST", "/", &[], b"").unwrap();
    assert_eq!(code, 405);
}

/// `berth apply` under a pseudo-terminal (`script` of util-linux), `RUST_LOG` unset.
fn apply_on_a_terminal(s: &Stack) -> String {
    let mut line = String::from(env!("CARGO_BIN_EXE_berth"));
    for a in s.apply_args() {
        line.push(' ');
        line.push_str(&a);
    }
    let out = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env_remove("RUST_LOG")
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn apply_on_a_terminal_shows_the_pull_each_slot_and_its_gate_live() {
    let p = Project::new("tty");
    let img = images();
    let s = Stack::new();
    let update = "    update: { monitor: 2s, deadline: 30s }\n";
    s.write(&format!(
        "project: {}\nservices:\n  api:\n    image: {}\n    replicas: 2\n    stop_grace: 2s\n{update}",
        p.name(),
        img.app_v1
    ));
    let first = apply_on_a_terminal(&s);
    assert!(first.contains("api: converged"), "{first}");
    // An image this host does not have: the pull is shown.
    let reg = crate::support::registry();
    let v2 = reg.push_copy(&img.app_v2, &format!("{}/app", p.name()), "v2");
    crate::support::docker_ok(["rmi", &v2]);
    s.write(&format!(
        "project: {}\nservices:\n  api:\n    image: {v2}\n    replicas: 2\n    stop_grace: 2s\n{update}",
        p.name()
    ));
    let out = apply_on_a_terminal(&s);
    for shown in [
        format!("pulling {v2}"),
        format!("pulled {v2}"),
        format!("api → {v2}"),
        format!(
            "slot 1  {}-api-1-next  health gate: healthy within",
            p.name()
        ),
        format!(
            "slot 2  {}-api-2-next  health gate: healthy within",
            p.name()
        ),
        format!("draining {}-api-1", p.name()),
        "api: converged".to_string(),
        // Redrawn in place.
        "\x1b[1A\x1b[2K".to_string(),
    ] {
        assert!(out.contains(&shown), "{shown:?} not in:\n{out}");
    }
    // (Layers and bytes show only when the engine downloads some; this image's
    // content is on the host already under another name, so it reports none. The fold
    // of its messages is unit-tested in runtime::docker::pull_progress.)
    // The log's info lines are not drawn over the view; the report follows it.
    assert!(!out.contains("action=\"create\""), "{out}");
    assert!(out.contains("converged"), "{out}");
}

#[test]
fn status_watch_prints_the_table_again_when_the_agent_moves() {
    use std::io::BufRead;
    let p = Project::new("watchst");
    let img = images();
    let repo = Repo::new();
    let first = repo.commit(&crate::agent::stack(p.name(), &img.app_v1, 1), "first");
    let state = TempDir::default();
    let agent = repo.agent(state.path(), &[]);
    assert!(
        crate::agent::converges_to(&p, &img.app_v1, 1),
        "{}",
        agent.log()
    );
    let mut watch = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "status",
            "--watch",
            "--watch-every",
            "200ms",
            "--listen",
            &format!("127.0.0.1:{}", agent.port),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    // A watch that never prints what is awaited is ended, failing the read below.
    let (done, guard) = std::sync::mpsc::channel::<()>();
    let pid = watch.id().to_string();
    std::thread::spawn(move || {
        if guard.recv_timeout(Duration::from_secs(120)).is_err() {
            let _ = Command::new("kill").arg(&pid).status();
        }
    });
    let mut seen = String::new();
    let mut read_until = |what: &str, seen: &mut String| {
        while !seen.contains(what) {
            let line = lines.next().expect("berth status --watch ended").unwrap();
            seen.push_str(&line);
            seen.push('\n');
        }
    };
    read_until(&format!("at commit {}", &first[..12]), &mut seen);
    let sha = repo.commit(&crate::agent::stack(p.name(), &img.app_v2, 1), "bump");
    // Printed again as the agent moves on, without being asked.
    read_until(&format!("at commit {} \"bump\"", &sha[..12]), &mut seen);
    let _ = done.send(());
    let _ = watch.kill();
    let _ = watch.wait();
    // Not a terminal: no escape sequences, tables separated by a blank line.
    assert!(!seen.contains('\x1b'), "{seen}");
    assert!(seen.contains("\n\n"), "{seen}");
}
