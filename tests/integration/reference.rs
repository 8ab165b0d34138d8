//! The reference stack of `desired/` through the agent, on the real engine with a real
//! Caddy: it converges, Caddy serves the API and the committed static files, the
//! migration runs once; a one-line commit of `.env` releases a new api/worker image with
//! its migration once more, and going back runs nothing.
//!
//! The stack is the committed one. Its images come from `.env`, so the test writes the
//! test images there; what those images cannot run is substituted line by line in
//! [`SUBSTITUTIONS`], each one saying why.

use std::path::Path;
use std::time::Duration;

use crate::agent::{free_port, http, Repo};
use crate::support::{caddy_image, docker_stdout, images, wait_until, Project};
use crate::{berth, TempDir};

/// `(line of desired/docker-compose.prod.yml, what the test writes, why)`. Each line
/// must occur exactly once, so a change of the reference stack shows here.
const SUBSTITUTIONS: &[(&str, &str, &str)] = &[
    (
        "name: shop",
        "name: {project}",
        "a project name of its own, so parallel tests and leftovers never meet",
    ),
    (
        "      - \"80:80\"\n      - \"443:443\"\n      - \"443:443/udp\"",
        "      - \"{port}:80\"",
        "a free host port instead of 80 and 443 (Caddy serves plain HTTP on :80 inside)",
    ),
    (
        "    command: [\"uvicorn\", \"app.main:app\", \"--host\", \"0.0.0.0\", \"--port\", \"8000\"]",
        "    command: [\"sh\", \"-c\", \"mkdir -p /tmp/www/api && cp /www/* /tmp/www/ && cp /www/index.html /tmp/www/api/ && trap 'exit 0' TERM; httpd -f -p 8000 -h /tmp/www & wait\"]",
        "the test app is busybox httpd, not uvicorn: it serves its version under /api/ too",
    ),
    (
        "      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost:8000/health\"]\n      interval: 5s",
        "      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:8000/health\"]\n      interval: 1s",
        "busybox has wget, not curl; checked every second to keep the test short",
    ),
    (
        "        monitor: 10s",
        "        monitor: 1s",
        "a shorter watch of each new api replica, to keep the test short",
    ),
    (
        "    command: [\"celery\", \"-A\", \"tasks\", \"worker\", \"-l\", \"info\"]",
        "    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; httpd -f -p 8000 -h /www & wait\"]",
        "the test app has no celery: the worker runs the app's server",
    ),
    (
        "      test: [\"CMD\", \"celery\", \"-A\", \"tasks\", \"inspect\", \"ping\"]\n      interval: 30s",
        "      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:8000/health\"]\n      interval: 1s",
        "no celery to ping; checked every second to keep the test short",
    ),
    (
        "    expose: [\"3000\"]",
        "    expose: [\"3000\"]\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; httpd -f -p 3000 -h /www & wait\"]",
        "the test app listens on 8000; the web frontend's port is 3000",
    ),
    (
        "      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost:3000/\"]\n      interval: 5s",
        "      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:3000/\"]\n      interval: 1s",
        "checked every second to keep the test short",
    ),
    (
        "      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost:2019/config/\"]\n      interval: 5s",
        "      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:2019/config/\"]\n      interval: 1s",
        "checked every second to keep the test short",
    ),
    (
        "    command: [\"alembic\", \"upgrade\", \"head\"]",
        "    command: [\"sh\", \"-c\", \"echo migrating; cat /version\"]",
        "no alembic in the test app: the migration prints the image it ran on",
    ),
];

/// The reference compose file with [`SUBSTITUTIONS`] applied.
fn compose_file(project: &str, port: u16) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired");
    let mut text = std::fs::read_to_string(root.join("docker-compose.prod.yml")).unwrap();
    for (from, to, why) in SUBSTITUTIONS {
        assert_eq!(
            text.matches(from).count(),
            1,
            "desired/docker-compose.prod.yml changed: `{from}` ({why}) is not there once"
        );
        let to = to
            .replace("{project}", project)
            .replace("{port}", &port.to_string());
        text = text.replacen(from, &to, 1);
    }
    text
}

/// The committed `.env`: the reference stack's, with the test images.
fn dotenv(api: &str) -> String {
    let img = images();
    format!(
        "# The images of the stack, one line each.\nAPI_IMAGE={api}\nWEB_IMAGE={}\nCADDY_IMAGE={}\n",
        img.app_v1,
        caddy_image()
    )
}

/// Copies `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Running replicas as `service image`, sorted.
fn replicas(p: &Project) -> Vec<String> {
    let out = docker_stdout([
        "ps",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--filter",
        "label=berth.role=replica",
        "--format",
        "{{.Label \"berth.service\"}} {{.Label \"berth.image\"}}",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// What a converged stack runs with `api` as the API's image.
fn converged(api: &str) -> Vec<String> {
    let img = images();
    let mut v: Vec<String> = [
        ("api", api, 2),
        ("proxy", caddy_image(), 1),
        ("web", img.app_v1.as_str(), 1),
        ("worker", api, 3),
    ]
    .iter()
    .flat_map(|(s, i, n)| (0..*n).map(move |_| format!("{s} {i}")))
    .collect();
    v.sort();
    v
}

/// Every run of the migration the ledger holds, oldest first: the image the deploy
/// that ran it moved `api` to, and the outcome.
fn migration_runs(state: &Path) -> Vec<(String, String)> {
    let r = berth([
        "history",
        "--state-dir",
        &state.display().to_string(),
        "--output",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let h: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut out = Vec::new();
    // Newest first in the history.
    for deploy in h.as_array().unwrap().iter().rev() {
        let api = deploy["services"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["service"] == "api")
            .and_then(|s| s["to"].as_str())
            .unwrap_or_default();
        for m in deploy["migrations"].as_array().into_iter().flatten() {
            assert_eq!(m["migration"], "migrate", "{m}");
            out.push((
                api.to_string(),
                m["outcome"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

/// Caddy's answer for `path` on the published port.
fn get(port: u16, path: &str) -> Option<String> {
    match http(port, "GET", path, &[], b"") {
        Some((200, body)) => Some(body),
        _ => None,
    }
}

#[test]
fn the_reference_stack_converges_and_a_dotenv_commit_releases_with_its_migration_once() {
    let p = Project::new("reference");
    let img = images();
    let port = free_port();
    let repo = Repo::new();
    let desired = repo.path().join("desired");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("desired"),
        &desired,
    );
    std::fs::write(
        desired.join("docker-compose.prod.yml"),
        compose_file(p.name(), port),
    )
    .unwrap();
    std::fs::write(desired.join(".env"), dotenv(&img.app_v1)).unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "the reference stack"]);
    // The host's side: the env file of the API, its workers and the migration.
    let env_dir = TempDir::default();
    std::fs::write(
        env_dir.path().join(".env.prod"),
        "DATABASE_URL=postgresql://shop:host-only-secret@db.internal:5432/shop\n",
    )
    .unwrap();
    let state = TempDir::default();
    let agent = repo.agent(
        state.path(),
        &[
            "--path",
            "desired",
            "--env-dir",
            &env_dir.path().display().to_string(),
            "--interval",
            "1h",
        ],
    );

    let settled = |api: &str| {
        wait_until(Duration::from_secs(180), Duration::from_millis(250), || {
            replicas(&p) == converged(api)
                && get(port, "/api/").as_deref() == Some(&format!("{}\n", version(api)))
        })
    };
    assert!(settled(&img.app_v1), "{:?}\n{}", replicas(&p), agent.log());
    // Caddy serves the committed static files and the web frontend.
    let index = std::fs::read_to_string(desired.join("static/index.html")).unwrap();
    assert_eq!(get(port, "/static/index.html"), Some(index));
    assert_eq!(get(port, "/").as_deref(), Some("v1\n"));
    // The migration ran once, on the API's image.
    let v1 = img.app_v1.clone();
    let ran = |want: &[(String, String)]| {
        // The deploy is recorded once the apply is done.
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            migration_runs(state.path()) == want
        })
    };
    let once = [(v1.clone(), "succeeded".to_string())];
    assert!(
        ran(&once),
        "{:?}\n{}",
        migration_runs(state.path()),
        agent.log()
    );
    // The host's env file reached the API, and never the logs.
    let env = docker_stdout([
        "inspect",
        "-f",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &format!("{}-api-1", p.name()),
    ]);
    assert!(env.contains("DATABASE_URL=postgresql://shop:host-only-secret@"));
    assert!(!agent.log().contains("host-only-secret"));

    // A one-line commit of `.env` releases the new API image to api and worker.
    std::fs::write(desired.join(".env"), dotenv(&img.app_v2)).unwrap();
    let diff = repo.git(&["diff", "--numstat"]);
    assert_eq!(diff, "1\t1\tdesired/.env", "one line changed");
    repo.git(&["commit", "-q", "-am", "release api v2"]);
    assert!(settled(&img.app_v2), "{:?}\n{}", replicas(&p), agent.log());
    let v2 = img.app_v2.clone();
    let twice = [
        (v1.clone(), "succeeded".to_string()),
        (v2.clone(), "succeeded".to_string()),
    ];
    assert!(
        ran(&twice),
        "{:?}\n{}",
        migration_runs(state.path()),
        agent.log()
    );

    // Reconciling again runs nothing.
    let before = agent.status()["last_reconcile"].clone();
    assert_eq!(
        agent.post_control("/control/reconcile").map(|r| r.0),
        Some(202)
    );
    assert!(wait_until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || agent.status()["last_reconcile"] != before
    ));
    assert_eq!(replicas(&p), converged(&img.app_v2));
    assert_eq!(migration_runs(state.path()), twice);
    // Going back to the migrated v1 runs nothing either.
    repo.git(&["revert", "--no-edit", "HEAD"]);
    assert!(settled(&img.app_v1), "{:?}\n{}", replicas(&p), agent.log());
    let head = repo.git(&["rev-parse", "HEAD"]);
    assert!(wait_until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || agent.status()["applied_commit"]["sha"] == head.as_str()
    ));
    assert_eq!(migration_runs(state.path()), twice);
}

/// What the test app answers on `/` for `image` (`v1` for `…/app:v1`).
fn version(image: &str) -> &str {
    image.rsplit(':').next().unwrap_or_default()
}
