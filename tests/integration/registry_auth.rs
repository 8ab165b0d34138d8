//! Private registries: `berth apply` pulls from a registry behind htpasswd auth with the
//! credentials the Docker config gives, through `auths`, a `credHelpers` helper and a
//! `credsStore`; the helpers are shell programs written here that speak the protocol
//! and record what they were asked. Without credentials the registry refuses.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::support::{docker, docker_ok, docker_stdout, images, Project, Registry};
use crate::{Run, Stack, TempDir};

const USER: &str = "berth";
const SECRET: &str = "berth-secret";
/// bcrypt of [`SECRET`] for [`USER`] (`htpasswd -Bbn berth berth-secret`).
const HTPASSWD: &str = "berth:$2b$05$va3KKJnOP45oegz3.3jT6e8mZq2OPANFqXG3lDUvPF9Qyq1aHxXH.\n";

/// A registry behind htpasswd auth holding one image, and an image reference to it
/// that this host does not have (so `apply` must pull it).
struct Private {
    registry: Registry,
    image: String,
}

impl Private {
    fn new(p: &Project) -> Self {
        let registry = Registry::with_htpasswd(HTPASSWD);
        assert_eq!(registry.v2_status(None), Some(401));
        let image = format!("{}/{}/app:v1", registry.addr(), p.name());
        // Pushed with a login of its own config, never the machine's.
        let login = TempDir::default();
        let config = login.path().display().to_string();
        let mut child = Command::new("docker")
            .args(["--config", &config, "login", "-u", USER, "--password-stdin"])
            .arg(registry.addr())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker login runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(SECRET.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "docker login: {out:?}");
        docker(["tag", &images().app_v1, &image]);
        docker(["--config", &config, "push", "-q", &image]);
        docker(["rmi", &image]);
        Private { registry, image }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        docker_ok(["rmi", &self.image]);
    }
}

/// A Docker config directory (for `DOCKER_CONFIG`) and a directory of credential
/// helpers put first on PATH.
#[derive(Default)]
struct Client {
    config: TempDir,
    bin: TempDir,
}

impl Client {
    fn config(&self, json: &serde_json::Value) -> &Self {
        std::fs::write(self.config.path().join("config.json"), json.to_string()).unwrap();
        self
    }

    /// `docker-credential-<name>`: records its arguments and stdin in `<name>.called`,
    /// then runs `body`.
    fn helper(&self, name: &str, body: &str) -> &Self {
        let record = self.bin.path().join(format!("{name}.called"));
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" > '{r}'\ncat >> '{r}'\n{body}\n",
            r = record.display()
        );
        let p = self.bin.path().join(format!("docker-credential-{name}"));
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// What the helper was asked: `get` and the server URL, one a line.
    fn called(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.bin.path().join(format!("{name}.called"))).ok()
    }

    /// `berth apply` with `DOCKER_CONFIG` and `PATH` pointing here.
    fn apply(&self, s: &Stack) -> Run {
        let mut path = vec![self.bin.path().to_path_buf()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(s.apply_args())
            .env("RUST_LOG", "debug")
            .env("DOCKER_CONFIG", self.config.path())
            .env("PATH", std::env::join_paths(path).unwrap())
            .env_remove("HOME")
            .output()
            .expect("berth runs");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "the secret was printed: {run:?}"
        );
        run
    }
}

fn one_service(p: &Project, image: &str) -> Stack {
    let s = Stack::new();
    s.write(&format!(
        "project: {}
services:
  api:
    image: {image}
    stop_grace: 2s
    update: {{ monitor: 1s, deadline: 20s }}
",
        p.name()
    ));
    s
}

/// `name image state` of the project's containers.
fn running(p: &Project) -> Vec<String> {
    docker_stdout([
        "ps",
        "-a",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--format",
        "{{.Names}} {{.Label \"berth.image\"}} {{.State}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

fn converged(p: &Project, image: &str) -> Vec<String> {
    vec![format!("{}-api-1 {image} running", p.name())]
}

/// A helper answering the test registry's credentials.
fn answering() -> String {
    format!(r#"echo '{{"ServerURL":"ignored","Username":"{USER}","Secret":"{SECRET}"}}'"#)
}

#[test]
fn without_credentials_the_registry_refuses_the_pull() {
    let p = Project::new("authnone");
    let reg = Private::new(&p);
    let c = Client::default();
    c.config(&serde_json::json!({}));
    let s = one_service(&p, &reg.image);
    let r = c.apply(&s);
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.stdout.lines().find(|l| l.contains(" api ")).unwrap();
    assert!(
        line.contains(&format!("pull {}: ", reg.image))
            && line.contains("no basic auth credentials"),
        "{line}"
    );
    assert!(running(&p).is_empty());
    // Wrong credentials are refused as well.
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:wrong"));
    c.config(&serde_json::json!({ "auths": { reg.registry.addr(): { "auth": wrong } } }));
    let r = c.apply(&s);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(running(&p).is_empty());
}

#[test]
fn a_private_image_is_pulled_with_the_credentials_of_auths() {
    let p = Project::new("authauths");
    let reg = Private::new(&p);
    let c = Client::default();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{SECRET}"));
    c.config(&serde_json::json!({ "auths": { reg.registry.addr(): { "auth": auth } } }));
    let r = c.apply(&one_service(&p, &reg.image));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(running(&p), converged(&p, &reg.image));
}

#[test]
fn a_private_image_is_pulled_with_the_credentials_of_a_cred_helper() {
    let p = Project::new("authhelper");
    let reg = Private::new(&p);
    let c = Client::default();
    c.helper("testhelper", &answering());
    // `auths` holds a wrong password: the helper named for the registry wins.
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:wrong"));
    c.config(&serde_json::json!({
        "auths": { reg.registry.addr(): { "auth": wrong } },
        "credHelpers": { reg.registry.addr(): "testhelper" },
    }));
    let r = c.apply(&one_service(&p, &reg.image));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(running(&p), converged(&p, &reg.image));
    assert_eq!(
        c.called("testhelper").as_deref(),
        Some(format!("get\n{}\n", reg.registry.addr()).as_str())
    );
}

#[test]
fn a_private_image_is_pulled_with_the_credentials_of_a_creds_store() {
    let p = Project::new("authstore");
    let reg = Private::new(&p);
    let c = Client::default();
    c.helper("testhelper", &answering());
    c.config(&serde_json::json!({
        "auths": { reg.registry.addr(): {} },
        "credsStore": "testhelper",
    }));
    let r = c.apply(&one_service(&p, &reg.image));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(running(&p), converged(&p, &reg.image));
    assert_eq!(
        c.called("testhelper").as_deref(),
        Some(format!("get\n{}\n", reg.registry.addr()).as_str())
    );
}

#[test]
fn a_failing_helper_fails_the_pull_naming_the_helper_and_not_the_secret() {
    let p = Project::new("authfail");
    let reg = Private::new(&p);
    let c = Client::default();
    // A helper that prints the secret in its error: it must not reach berth's output.
    c.helper(
        "testhelper",
        &format!("echo 'session expired; stored password {SECRET} refused' ; exit 1"),
    );
    c.config(&serde_json::json!({ "credsStore": "testhelper" }));
    let r = c.apply(&one_service(&p, &reg.image));
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.stdout.lines().find(|l| l.contains(" api ")).unwrap();
    let config = c.config.path().join("config.json");
    assert!(
        line.contains(&format!(
            "pull {}: registry credentials for {} (credsStore in {}): docker-credential-testhelper failed (exit status: 1): session expired; stored [rest withheld: it may hold a secret]; nothing of this service was stopped",
            reg.image,
            reg.registry.addr(),
            config.display()
        )),
        "{line}"
    );
    assert!(running(&p).is_empty());
    // A helper that is not installed is named with what to do.
    c.config(&serde_json::json!({ "credHelpers": { reg.registry.addr(): "ecr-login" } }));
    let r = c.apply(&one_service(&p, &reg.image));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("docker-credential-ecr-login is not on PATH"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_hostile_registry_host_runs_no_program() {
    let p = Project::new("authhostile");
    let c = Client::default();
    c.helper("testhelper", &answering());
    // The operator names a helper for one registry and a store for all others.
    c.config(&serde_json::json!({
        "credHelpers": { "private.example.com": "testhelper" },
        "credsStore": "testhelper",
    }));
    // A commit names a registry host with shell syntax in it.
    let hostile = "private.example.com;sh${IFS}-c${IFS}id/app:v1";
    let r = c.apply(&one_service(&p, hostile));
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.stdout.lines().find(|l| l.contains(" api ")).unwrap();
    assert!(
        line.contains("registry `private.example.com;sh${IFS}-c${IFS}id` of image")
            && line.contains("is not a host name"),
        "{line}"
    );
    assert_eq!(c.called("testhelper"), None);
    assert!(running(&p).is_empty());
}
