//! Registry credentials: which part of the Docker config answers, hostile registry
//! hosts, and credential helpers (small shell programs written here) speaking the
//! protocol, failing, printing their secret, and hanging.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::config::valid_helper_name;
use super::helper::mask;
use super::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn source(config: &str, image: &str) -> Result<Source, ConfigProblem> {
    DockerConfig::parse(config)
        .unwrap()
        .source(&registry_key(image).unwrap())
}

fn helper_named(name: &str) -> impl Fn(&Source) -> bool + '_ {
    move |s| matches!(s, Source::Helper { name: n, .. } if n == name)
}

#[test]
fn registry_keys_as_docker_files_them() {
    let key = |i: &str| registry_key(i).unwrap();
    assert_eq!(key("127.0.0.1:5000/app:v1"), "127.0.0.1:5000");
    assert_eq!(key("ghcr.io/o/r:v1"), "ghcr.io");
    assert_eq!(key("localhost/app"), "localhost");
    assert_eq!(key("[::1]:5000/app"), "[::1]:5000");
    assert_eq!(key("caddy:2.7"), DOCKER_HUB);
    assert_eq!(key("library/caddy:2.7"), DOCKER_HUB);
    assert_eq!(key("docker.io/library/caddy:2.7"), DOCKER_HUB);
    assert_eq!(key("index.docker.io/library/caddy"), DOCKER_HUB);
    assert_eq!(DOCKER_HUB, "https://index.docker.io/v1/");
}

#[test]
fn a_registry_host_that_is_not_a_host_name_is_refused() {
    for image in [
        "evil.io;sh/app:v1",
        "a.b$(touch x)/app",
        "../../bin/sh:1/app",
        "x.io|id/app",
        "..:5000/app",
        "-x.io/app",
        "x.io:50a0/app",
        "x.io:/app",
        "a.b`id`/app",
        "a.b\u{1b}[31m/app",
    ] {
        let e = registry_key(image).unwrap_err();
        assert!(matches!(e, AuthError::Registry { .. }), "{image}: {e:?}");
        let text = e.to_string();
        assert!(text.contains("is not a host name"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}

#[tokio::test]
async fn a_hostile_registry_is_refused_before_any_config_is_read() {
    let e = registry_auth("x.io;id/app:v1").await.unwrap_err();
    assert!(matches!(e, AuthError::Registry { .. }), "{e:?}");
}

#[test]
fn cred_helpers_win_then_creds_store_then_auths() {
    let all = format!(
        r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}},
            "credHelpers": {{"ghcr.io": "gh", "quay.io": "quay"}},
            "credsStore": "store"}}"#,
        b64("bot:pw")
    );
    assert!(helper_named("gh")(&source(&all, "ghcr.io/o/r:v1").unwrap()));
    assert_eq!(
        source(&all, "ghcr.io/o/r:v1").unwrap(),
        Source::Helper {
            name: "gh".into(),
            key: HelperKey::CredHelpers("ghcr.io".into())
        }
    );
    // Another registry: the store, not the other registry's helper.
    assert_eq!(
        source(&all, "registry.example.com/x").unwrap(),
        Source::Helper {
            name: "store".into(),
            key: HelperKey::CredsStore
        }
    );
    // No store: the helper still answers for its registry, `auths` for the rest.
    let no_store = all.replace(r#""credsStore": "store""#, r#""credsStore": """#);
    assert!(helper_named("gh")(
        &source(&no_store, "ghcr.io/o/r").unwrap()
    ));
    let only_auths = no_store.replace(r#""ghcr.io": "gh", "#, "");
    let Source::Inline(a) = source(&only_auths, "ghcr.io/o/r").unwrap() else {
        panic!("auths not read")
    };
    assert_eq!(
        (a.username.as_str(), a.password.as_str(), a.server.as_str()),
        ("bot", "pw", "ghcr.io")
    );
    // Nothing for this registry anywhere.
    assert_eq!(
        source(&no_store, "registry.example.com/x").unwrap(),
        Source::None
    );
    assert_eq!(source("{}", "caddy:2").unwrap(), Source::None);
}

#[test]
fn auths_entries_in_every_form_docker_writes() {
    let cfg = format!(
        r#"{{"auths": {{
            "https://index.docker.io/v1/": {{"auth": "{hub}"}},
            "ghcr.io": {{"username": "u", "password": "p"}},
            "https://old.example.com/v1/": {{"auth": "{old}"}},
            "acr.example.io": {{"auth": "", "identitytoken": "refresh-tok"}},
            "store.example.com": {{}}
        }}}}"#,
        hub = b64("hubber:hubpw"),
        old = b64("o:op"),
    );
    let inline = |image: &str| match source(&cfg, image).unwrap() {
        Source::Inline(a) => a,
        other => panic!("{image}: {other:?}"),
    };
    let hub = inline("caddy:2.7");
    assert_eq!(
        (hub.username.as_str(), hub.password.as_str()),
        ("hubber", "hubpw")
    );
    assert_eq!(hub.server, DOCKER_HUB);
    let gh = inline("ghcr.io/o/r");
    assert_eq!((gh.username.as_str(), gh.password.as_str()), ("u", "p"));
    // A key with a scheme and path, as older clients wrote it.
    assert_eq!(inline("old.example.com/app").username, "o");
    let acr = inline("acr.example.io/app");
    assert_eq!(acr.identity_token.as_deref(), Some("refresh-tok"));
    // `{}` beside a store is no credentials.
    assert_eq!(source(&cfg, "store.example.com/app").unwrap(), Source::None);
    assert_eq!(source(&cfg, "quay.io/x:v1").unwrap(), Source::None);
}

#[test]
fn config_errors_never_quote_a_value() {
    // A password of the wrong type: serde's own message would quote it.
    let e = DockerConfig::parse(r#"{"auths": {"x.io": {"password": 987654321}}}"#).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("line 1"), "{text}");
    assert!(!text.contains("987654321"), "{text}");
    let e = DockerConfig::parse(r#"{"auths": {"x.io": {"password": "hunter2-pw" }"#).unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let bad = r#"{"auths": {"x.io": {"auth": "not base64 hunter2!"}}}"#;
    let e = source(bad, "x.io/app").unwrap_err();
    assert_eq!(e, ConfigProblem::BadAuth { key: "x.io".into() });
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let no_colon = format!(
        r#"{{"auths": {{"x.io": {{"auth": "{}"}}}}}}"#,
        b64("hunter2")
    );
    assert!(source(&no_colon, "x.io/app").is_err());
}

#[test]
fn a_helper_name_must_be_a_plain_name() {
    for good in [
        "ecr-login",
        "gcloud",
        "pass",
        "acr-env",
        "desktop.exe",
        "osxkeychain",
    ] {
        assert!(valid_helper_name(good), "{good}");
    }
    for bad in [
        "",
        ".",
        "..",
        "../../bin/sh",
        "/bin/sh",
        "a b",
        "x;id",
        "$(id)",
        "a|b",
        "a\nb",
        &"x".repeat(65),
    ] {
        assert!(!valid_helper_name(bad), "{bad:?}");
        let cfg = serde_json::json!({ "credHelpers": { "x.io": bad } }).to_string();
        let e = source(&cfg, "x.io/app").unwrap_err();
        assert!(matches!(e, ConfigProblem::HelperName { .. }), "{e:?}");
        assert!(e.to_string().contains("credHelpers[\"x.io\"]"), "{e}");
        let store = serde_json::json!({ "credsStore": bad }).to_string();
        if !bad.is_empty() {
            assert!(source(&store, "x.io/app").is_err(), "{bad:?}");
        }
    }
}

#[test]
fn a_hostile_image_only_selects_among_the_configured_helpers() {
    // The operator names one helper for one registry, and no store.
    let cfg = r#"{"credHelpers": {"private.example.com": "testhelper"}}"#;
    let parsed = DockerConfig::parse(cfg).unwrap();
    let hostile = [
        "private.example.com;id/app",
        "private.example.com/../../x",
        "testhelper.io/app",
        "docker-credential-testhelper.io/app",
        "private.example.com:22/app",
        "PRIVATE.example.com/app",
    ];
    for image in hostile {
        match registry_key(image) {
            Err(_) => {}
            Ok(key) => {
                let s = parsed.source(&key).unwrap();
                // Only the exact configured host selects the helper.
                assert_eq!(
                    helper_named("testhelper")(&s),
                    key == "private.example.com",
                    "{image}"
                );
                assert!(matches!(s, Source::None | Source::Helper { .. }));
            }
        }
    }
    // Without a store, no image makes berth run any program.
    assert_eq!(parsed.source("evil.example.com").unwrap(), Source::None);
}

#[test]
fn the_config_is_found_as_docker_finds_it() {
    let os = |s: &str| Some(OsString::from(s));
    let env = AuthEnv::from_vars(os("/etc/berth/docker"), os("/home/u"), None);
    assert_eq!(
        env.config,
        Some(PathBuf::from("/etc/berth/docker/config.json"))
    );
    let env = AuthEnv::from_vars(None, os("/home/u"), None);
    assert_eq!(
        env.config,
        Some(PathBuf::from("/home/u/.docker/config.json"))
    );
    let env = AuthEnv::from_vars(os(""), os("/home/u"), None);
    assert_eq!(
        env.config,
        Some(PathBuf::from("/home/u/.docker/config.json"))
    );
    assert_eq!(AuthEnv::from_vars(None, None, None).config, None);
    assert_eq!(AuthEnv::from_vars(None, None, None).timeout, HELPER_TIMEOUT);
}

#[test]
fn helper_messages_are_cut_and_masked() {
    assert_eq!(
        mask("error getting credentials - err: no basic auth credentials"),
        "error getting credentials - err: no basic auth credentials"
    );
    let m = mask("login failed: password hunter2 rejected");
    assert!(
        !m.contains("hunter2") && m.starts_with("login failed:"),
        "{m}"
    );
    let m = mask(r#"bad answer {"Username":"u","Secret":"s3"}"#);
    assert!(!m.contains("s3") && m.starts_with("bad answer"), "{m}");
    let m = mask("expired ghp_16C7e42F292c6912E7710c838347Ae178B4a for ghcr.io");
    assert!(!m.contains("ghp_") && m.contains("for ghcr.io"), "{m}");
    assert!(
        mask("Secret=abc").starts_with('['),
        "{}",
        mask("Secret=abc")
    );
    assert_eq!(
        mask("see /usr/local/bin/docker-credential-x2"),
        "see /usr/local/bin/docker-credential-x2"
    );
}

/// A directory holding `docker-credential-<name>` programs, and a PATH naming it.
struct Helpers {
    dir: tempfile::TempDir,
}

impl Helpers {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes `docker-credential-<name>`: a shell script with `body`. It records its
    /// arguments and its stdin in `<name>.called`.
    fn add(&self, name: &str, body: &str) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        let record = self.dir.path().join(format!("{name}.called"));
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" > '{}'\ncat >> '{}'\n{body}\n",
            record.display(),
            record.display()
        );
        let p = self.dir.path().join(format!("docker-credential-{name}"));
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    fn called(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.called"))).ok()
    }

    /// An env whose config is `config` (written here) and whose PATH is this directory
    /// after a relative entry that must not be searched.
    fn env(&self, config: &str) -> AuthEnv {
        let cfg_dir = self.dir.path().join("docker");
        std::fs::create_dir_all(&cfg_dir).unwrap();
        std::fs::write(cfg_dir.join("config.json"), config).unwrap();
        let path = std::env::join_paths([Path::new("relative/bin"), self.dir.path()]).unwrap();
        AuthEnv::from_vars(Some(cfg_dir.into_os_string()), None, Some(path))
    }
}

#[tokio::test]
async fn a_helper_is_asked_with_the_server_url_on_stdin() {
    let h = Helpers::new();
    h.add(
        "testhelper",
        r#"echo '{"ServerURL":"x.io","Username":"bot","Secret":"s3cret-pw"}'"#,
    );
    let env = h.env(r#"{"credHelpers": {"x.io:5000": "testhelper"}}"#);
    let a = server_auth(&env, "x.io:5000").await.unwrap().unwrap();
    assert_eq!(
        (a.username.as_str(), a.password.as_str()),
        ("bot", "s3cret-pw")
    );
    assert_eq!(a.server, "x.io:5000");
    assert_eq!(h.called("testhelper").unwrap(), "get\nx.io:5000\n");
    // The secret stays out of the credentials' Debug.
    assert!(!format!("{a:?}").contains("s3cret"), "{a:?}");
    // Another registry: no helper named, none run, no credentials.
    assert_eq!(server_auth(&env, "y.io").await.unwrap(), None);
}

#[tokio::test]
async fn a_store_answers_identity_tokens_and_not_found() {
    let h = Helpers::new();
    h.add(
        "store",
        r#"if grep -q tok.io "$(dirname "$0")/store.called"; then
  echo '{"ServerURL":"tok.io","Username":"<token>","Secret":"refresh-123"}'
else
  echo 'credentials not found in native keychain'; exit 1
fi"#,
    );
    let env = h.env(r#"{"credsStore": "store", "auths": {"tok.io": {}}}"#);
    let a = server_auth(&env, "tok.io").await.unwrap().unwrap();
    assert_eq!(a.identity_token.as_deref(), Some("refresh-123"));
    assert_eq!((a.username.as_str(), a.password.as_str()), ("", ""));
    assert_eq!(server_auth(&env, "none.io").await.unwrap(), None);
}

#[tokio::test]
async fn a_failing_helper_is_named_and_its_secret_not_repeated() {
    let h = Helpers::new();
    h.add(
        "leaky",
        "echo 'cannot refresh: Secret s3cret-pw is expired' ; exit 3",
    );
    h.add("garbled", r#"echo 'Username=bot Secret=s3cret-pw'"#);
    h.add("silent", "exit 1");
    let env = h.env(
        r#"{"credHelpers": {"leaky.io": "leaky", "garbled.io": "garbled", "silent.io": "silent", "absent.io": "absent"}}"#,
    );
    let e = server_auth(&env, "leaky.io").await.unwrap_err().to_string();
    assert!(
        e.contains("docker-credential-leaky failed (exit status: 3): cannot refresh:"),
        "{e}"
    );
    assert!(
        e.contains("credHelpers[\"leaky.io\"]") && e.contains("config.json"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    let e = server_auth(&env, "garbled.io")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("docker-credential-garbled answered with"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    let e = server_auth(&env, "silent.io")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("docker-credential-silent failed") && e.contains("printed nothing"),
        "{e}"
    );
    let e = server_auth(&env, "absent.io")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("docker-credential-absent is not on PATH"), "{e}");
}

#[tokio::test]
async fn a_helper_in_a_relative_path_entry_is_not_run() {
    let h = Helpers::new();
    h.add("testhelper", r#"echo '{"Username":"u","Secret":"s"}'"#);
    // The helpers' directory, written relative to the current directory.
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count() - 1);
    let rel = PathBuf::from(format!(
        "{up}{}",
        h.dir.path().strip_prefix("/").unwrap().display()
    ));
    assert!(rel.join("docker-credential-testhelper").exists());
    let env = AuthEnv {
        path: Some(std::env::join_paths([rel.as_path(), Path::new("")]).unwrap()),
        ..h.env(r#"{"credsStore": "testhelper"}"#)
    };
    let e = server_auth(&env, "x.io").await.unwrap_err().to_string();
    assert!(
        e.contains("docker-credential-testhelper is not on PATH"),
        "{e}"
    );
    assert_eq!(h.called("testhelper"), None);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_helper_is_killed_after_the_timeout() {
    let h = Helpers::new();
    // `sleep` under a name of this test's directory, so its process can be looked for.
    let sleeper = h.dir.path().join("sleeper");
    std::os::unix::fs::symlink(which("sleep"), &sleeper).unwrap();
    // It starts a child of its own, says so, and waits for it.
    let record = h.dir.path().join("slow.called");
    h.add(
        "slow",
        &format!(
            "'{}' 1000 &\necho started >> '{}'\nwait",
            sleeper.display(),
            record.display()
        ),
    );
    let env = h.env(r#"{"credsStore": "slow"}"#);
    let started = tokio::time::Instant::now();
    let asking = tokio::spawn(async move { server_auth(&env, "x.io").await });
    // The clock stands still while this task keeps the runtime busy: the helper is
    // seen running (its record written) before its 30 s can pass.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !h
        .called("slow")
        .is_some_and(|c| c.starts_with("get") && c.contains("started"))
    {
        assert!(std::time::Instant::now() < deadline, "the helper never ran");
        tokio::task::yield_now().await;
    }
    assert_eq!(started.elapsed(), std::time::Duration::ZERO);
    let e = asking.await.unwrap().unwrap_err();
    assert!(
        matches!(&e, AuthError::Helper { error, .. } if matches!(**error, HelperError::Timeout { .. })),
        "{e:?}"
    );
    assert_eq!(started.elapsed(), HELPER_TIMEOUT);
    assert!(
        e.to_string()
            .contains("did not answer within 30 s and was killed"),
        "{e}"
    );
    // Killed with what it started (the script's `cat`): no process runs the helper or
    // what it became once the killed ones have exited, which SIGKILL makes them do.
    let mine = h.dir.path().display().to_string();
    let survivors = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&mine))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !survivors().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(survivors().is_empty(), "{:?}", survivors());
}

/// The absolute path of a program on the test's PATH.
fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

#[tokio::test]
async fn a_missing_config_is_no_credentials_and_a_broken_one_an_error() {
    let h = Helpers::new();
    let env = AuthEnv::from_vars(Some(h.dir.path().join("nowhere").into()), None, None);
    assert_eq!(server_auth(&env, "x.io").await.unwrap(), None);
    let env = h.env("{not json");
    let e = server_auth(&env, "x.io").await.unwrap_err().to_string();
    assert!(
        e.contains("config.json: it is not a valid Docker config"),
        "{e}"
    );
}

#[test]
fn credentials_of_one_registry_are_never_handed_to_another() {
    let cfg = format!(
        r#"{{"auths": {{
            "registry.example.com": {{"auth": "{a}"}},
            "https://index.docker.io/v1/": {{"auth": "{a}"}}
        }}}}"#,
        a = b64("bot:pw")
    );
    assert!(matches!(
        source(&cfg, "registry.example.com/app").unwrap(),
        Source::Inline(_)
    ));
    for image in [
        "registry.example.com.evil.io/app",
        "evil.io/registry.example.com/app",
        "registry.example.com:444/app",
        "evil-registry.example.com/app",
        "example.com/app",
        "evil.io/library/caddy",
        "localhost/caddy",
    ] {
        assert_eq!(source(&cfg, image).unwrap(), Source::None, "{image}");
    }
}
