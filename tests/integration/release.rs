//! `berth bump` and `berth rollback` in real git repositories in temporary directories,
//! pushing to real bare remotes, and asking the loopback registry with `--check-image`.

use std::path::Path;
use std::process::Command;

use crate::support::{images, registry, Registry};
use crate::{Run, TempDir};

const GOLDEN: &str = include_str!("../bump/compose.yaml");
const GOLDEN_BUMPED: &str = include_str!("../bump/compose.bumped.yaml");

/// A git user of its own: HOME (and so the global config) is a temporary directory.
struct Desk {
    home: TempDir,
}

impl Desk {
    fn new() -> Self {
        let desk = Self {
            home: TempDir::default(),
        };
        desk.git(
            desk.home.path(),
            &["config", "--global", "user.name", "Release Bot"],
        );
        desk.git(
            desk.home.path(),
            &["config", "--global", "user.email", "bot@example.com"],
        );
        desk.git(
            desk.home.path(),
            &["config", "--global", "init.defaultBranch", "main"],
        );
        desk
    }

    fn command(&self, program: &str, dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir)
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("DOCKER_CONFIG", self.home.path().join("docker"))
            .env_remove("GIT_DIR")
            .env_remove("BERTH_FILE");
        c
    }

    /// `git ARGS` in `dir`; its stdout, or a panic with its stderr.
    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self
            .command("git", dir)
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `berth ARGS` with `dir` as the working directory.
    fn berth(&self, dir: &Path, args: &[&str]) -> Run {
        let out = self
            .command(env!("CARGO_BIN_EXE_berth"), dir)
            .args(args)
            .output()
            .expect("berth runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A new repository in `dir` holding `files`, committed.
    fn repo(&self, dir: &Path, files: &[(&str, &str)]) {
        self.git(dir, &["init", "-q"]);
        self.commit(dir, files, "initial desired state");
    }

    /// Writes `files` and commits them with `message`.
    fn commit(&self, dir: &Path, files: &[(&str, &str)], message: &str) {
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        self.git(dir, &["add", "-A"]);
        self.git(dir, &["commit", "-q", "-m", message]);
    }

    fn subject(&self, dir: &Path, rev: &str) -> String {
        self.git(dir, &["log", "-1", "--format=%s", rev])
            .trim()
            .to_string()
    }
}

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).unwrap()
}

#[test]
fn bump_changes_exactly_the_image_line_of_a_file_with_comments_anchors_and_quotes() {
    let desk = Desk::new();
    let repo = TempDir::default();
    desk.repo(
        repo.path(),
        &[("deploy/compose.yaml", GOLDEN), ("README.md", "deploys\n")],
    );
    let run = desk.berth(
        repo.path(),
        &[
            "bump",
            "api",
            "sha-2222222",
            "--file",
            "deploy/compose.yaml",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("moves together with api (same image line or variable): worker"),
        "{run:?}"
    );
    assert_eq!(read(repo.path(), "deploy/compose.yaml"), GOLDEN_BUMPED);
    // The commit: one line out, one line in, nothing else; named by service and tags.
    assert_eq!(
        desk.git(repo.path(), &["diff", "--numstat", "HEAD~1", "HEAD"]),
        "1\t1\tdeploy/compose.yaml\n"
    );
    assert_eq!(
        desk.subject(repo.path(), "HEAD"),
        "bump api, worker: sha-1111111 → sha-2222222"
    );
    assert_eq!(desk.git(repo.path(), &["status", "--porcelain"]), "");
    // A single-quoted anchored scalar keeps its quotes; its alias moves with it.
    let run = desk.berth(
        repo.path(),
        &["bump", "web", "v1.2.4", "-f", "deploy/compose.yaml"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("web-canary"), "{run:?}");
    let diff = desk.git(repo.path(), &["diff", "-U0", "HEAD~1", "HEAD"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed,
        [
            "-    image: &web 'registry.example.com/shop/web:v1.2.3'   # kept in quotes",
            "+    image: &web 'registry.example.com/shop/web:v1.2.4'   # kept in quotes",
        ]
    );
}

#[test]
fn bump_of_an_interpolated_image_edits_the_committed_env_line() {
    let desk = Desk::new();
    let repo = TempDir::default();
    let compose = "name: shop\nservices:\n  api:\n    image: registry.example.com/shop/api:${API_TAG}\n  worker:\n    image: registry.example.com/shop/api:${API_TAG}\n    command: [work]\n";
    desk.repo(
        repo.path(),
        &[
            ("compose.yaml", compose),
            (
                ".env",
                "# released by CI\nAPI_TAG=sha-aaaaaaa # api and worker\n",
            ),
        ],
    );
    let run = desk.berth(
        repo.path(),
        &["bump", "api", "registry.example.com/shop/api:sha-bbbbbbb"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(".env:2 (API_TAG"), "{run:?}");
    assert!(run.stdout.contains("worker"), "{run:?}");
    assert_eq!(read(repo.path(), "compose.yaml"), compose);
    assert_eq!(
        read(repo.path(), ".env"),
        "# released by CI\nAPI_TAG=sha-bbbbbbb # api and worker\n"
    );
    assert_eq!(
        desk.git(repo.path(), &["diff", "--numstat", "HEAD~1", "HEAD"]),
        "1\t1\t.env\n"
    );
    assert_eq!(
        desk.subject(repo.path(), "HEAD"),
        "bump api, worker: sha-aaaaaaa → sha-bbbbbbb"
    );
}

#[test]
fn bump_refuses_a_file_with_uncommitted_changes_and_writes_nothing() {
    let desk = Desk::new();
    let repo = TempDir::default();
    desk.repo(repo.path(), &[("compose.yaml", GOLDEN)]);
    let edited = format!("{GOLDEN}# a note\n");
    std::fs::write(repo.path().join("compose.yaml"), &edited).unwrap();
    let run = desk.berth(repo.path(), &["bump", "api", "sha-2222222"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("compose.yaml has uncommitted changes; commit or stash them first"),
        "{run:?}"
    );
    assert_eq!(read(repo.path(), "compose.yaml"), edited);
    assert_eq!(desk.subject(repo.path(), "HEAD"), "initial desired state");
}

#[test]
fn a_dangling_env_symlink_in_the_repository_is_not_written_through() {
    let desk = Desk::new();
    let repo = TempDir::default();
    let outside = TempDir::default();
    let target = outside.path().join("planted");
    let compose =
        "name: shop\nservices:\n  api:\n    image: registry.example.com/shop/api:${API_TAG:-v1}\n";
    desk.repo(repo.path(), &[("compose.yaml", compose)]);
    std::os::unix::fs::symlink(&target, repo.path().join(".env")).unwrap();
    desk.git(repo.path(), &["add", ".env"]);
    desk.git(repo.path(), &["commit", "-q", "-m", "a link"]);
    let run = desk.berth(repo.path(), &["bump", "api", "v2"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(".env: a symlink or outside the checkout; not written"),
        "{run:?}"
    );
    assert!(!target.exists());
    assert_eq!(desk.subject(repo.path(), "HEAD"), "a link");
}

fn registry_stack(reg: &str, tag: &str) -> String {
    format!("name: shop\nservices:\n  app:\n    image: {reg}/berth-test/app:{tag}  # the app\n")
}

#[test]
fn check_image_refuses_a_tag_the_registry_lacks_and_accepts_a_pushed_one() {
    let pushed = &images().app_v1; // ADDR/berth-test/app:v1, in the shared registry
    let reg = registry().addr();
    assert!(pushed.starts_with(&reg), "{pushed}");
    let desk = Desk::new();
    let repo = TempDir::default();
    let stack = registry_stack(&reg, "v0");
    desk.repo(repo.path(), &[("compose.yaml", &stack)]);
    let run = desk.berth(repo.path(), &["bump", "app", "v404", "--check-image"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "{reg} has no `{reg}/berth-test/app:v404`: push the image first (nothing was written)"
        )),
        "{run:?}"
    );
    assert_eq!(read(repo.path(), "compose.yaml"), stack);
    assert_eq!(desk.subject(repo.path(), "HEAD"), "initial desired state");
    let run = desk.berth(repo.path(), &["bump", "app", "v1", "--check-image"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("{reg}/berth-test/app:v1 exists in its registry")),
        "{run:?}"
    );
    assert_eq!(
        read(repo.path(), "compose.yaml"),
        registry_stack(&reg, "v1")
    );
    assert_eq!(desk.subject(repo.path(), "HEAD"), "bump app: v0 → v1");
}

#[test]
fn check_image_answers_basic_auth_with_the_docker_config_credentials() {
    let r = Registry::with_htpasswd(
        "berth:$2b$05$va3KKJnOP45oegz3.3jT6e8mZq2OPANFqXG3lDUvPF9Qyq1aHxXH.\n",
    );
    let reg = r.addr();
    let desk = Desk::new();
    let repo = TempDir::default();
    desk.repo(
        repo.path(),
        &[("compose.yaml", &registry_stack(&reg, "v0"))],
    );
    // Without credentials: told to log in.
    let run = desk.berth(repo.path(), &["bump", "app", "v1", "--check-image"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains(&format!("{reg} asks for credentials and the Docker config has none for it; run `docker login {reg}`")), "{run:?}");
    // With them (as `docker login` writes them): the registry answers, the tag is missing.
    let config = desk.home.path().join("docker");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!("{{\"auths\":{{\"{reg}\":{{\"auth\":\"YmVydGg6YmVydGgtc2VjcmV0\"}}}}}}"),
    )
    .unwrap();
    let run = desk.berth(repo.path(), &["bump", "app", "v1", "--check-image"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("{reg} has no `{reg}/berth-test/app:v1`")),
        "{run:?}"
    );
    assert!(!run.stderr.contains("berth-secret") && !run.stdout.contains("berth-secret"));
    // Wrong ones: refused, without the password.
    std::fs::write(
        config.join("config.json"),
        format!("{{\"auths\":{{\"{reg}\":{{\"username\":\"berth\",\"password\":\"not-the-secret\"}}}}}}"),
    )
    .unwrap();
    let run = desk.berth(repo.path(), &["bump", "app", "v1", "--check-image"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("refused to show berth-test/app:v1 (401)"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("not-the-secret"), "{run:?}");
    assert_eq!(desk.subject(repo.path(), "HEAD"), "initial desired state");
}

#[test]
fn a_push_rejected_because_the_remote_moved_is_replayed_on_the_new_tip() {
    let desk = Desk::new();
    let remote = TempDir::default();
    let ours = TempDir::default();
    let theirs = TempDir::default();
    desk.git(remote.path(), &["init", "-q", "--bare"]);
    let remote_url = remote.path().display().to_string();
    desk.repo(ours.path(), &[("compose.yaml", GOLDEN)]);
    desk.git(ours.path(), &["remote", "add", "origin", &remote_url]);
    desk.git(ours.path(), &["push", "-q", "-u", "origin", "main"]);
    // Another release lands first, in the same file, before our first push.
    desk.git(theirs.path(), &["clone", "-q", &remote_url, "."]);
    let web_bumped = GOLDEN.replace("shop/web:v1.2.3", "shop/web:v1.2.9");
    desk.commit(
        theirs.path(),
        &[("compose.yaml", &web_bumped)],
        "bump web: v1.2.3 → v1.2.9",
    );
    desk.git(theirs.path(), &["push", "-q", "origin", "main"]);
    let their_tip = desk
        .git(theirs.path(), &["rev-parse", "HEAD"])
        .trim()
        .to_string();

    let run = desk.berth(ours.path(), &["bump", "api", "sha-2222222", "--push"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("push rejected (the remote moved); replaying on"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("pushed (replayed on the remote's new tip after 1 rejected push(es))"),
        "{run:?}"
    );
    // The remote: their commit, then ours on top of it (not a merge), both edits kept.
    let log = desk.git(remote.path(), &["log", "--format=%P %s", "main"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines[0],
        format!("{their_tip} bump api, worker: sha-1111111 → sha-2222222")
    );
    assert_eq!(lines.len(), 3, "{log}");
    let content = desk.git(remote.path(), &["show", "main:compose.yaml"]);
    assert_eq!(
        content,
        web_bumped.replace("shop/app:sha-1111111", "shop/app:sha-2222222")
    );
    assert_eq!(read(ours.path(), "compose.yaml"), content);
    assert_eq!(desk.git(ours.path(), &["status", "--porcelain"]), "");
}

#[test]
fn bump_push_refuses_local_commits_it_would_not_replay() {
    let desk = Desk::new();
    let remote = TempDir::default();
    let ours = TempDir::default();
    desk.git(remote.path(), &["init", "-q", "--bare"]);
    desk.repo(ours.path(), &[("compose.yaml", GOLDEN)]);
    desk.git(
        ours.path(),
        &[
            "remote",
            "add",
            "origin",
            &remote.path().display().to_string(),
        ],
    );
    desk.git(ours.path(), &["push", "-q", "-u", "origin", "main"]);
    desk.commit(ours.path(), &[("notes.md", "x\n")], "a local note");
    let run = desk.berth(ours.path(), &["bump", "api", "sha-2222222", "--push"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("main has 1 commit(s) not on origin/main; push or drop them first"),
        "{run:?}"
    );
    assert_eq!(read(ours.path(), "compose.yaml"), GOLDEN);
}

#[test]
fn bump_sign_signs_with_the_ssh_key_git_is_configured_with() {
    let desk = Desk::new();
    let repo = TempDir::default();
    desk.repo(repo.path(), &[("compose.yaml", GOLDEN)]);
    let key = desk.home.path().join("signing_key");
    let out = desk
        .command("ssh-keygen", repo.path())
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bot", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let allowed = desk.home.path().join("allowed_signers");
    std::fs::write(
        &allowed,
        format!("bot@example.com namespaces=\"git\" {public}"),
    )
    .unwrap();
    desk.git(repo.path(), &["config", "gpg.format", "ssh"]);
    desk.git(
        repo.path(),
        &["config", "user.signingkey", &key.display().to_string()],
    );
    desk.git(
        repo.path(),
        &[
            "config",
            "gpg.ssh.allowedSignersFile",
            &allowed.display().to_string(),
        ],
    );
    let run = desk.berth(repo.path(), &["bump", "api", "sha-2222222", "--sign"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        desk.git(repo.path(), &["log", "-1", "--format=%G? %s"])
            .trim(),
        "G bump api, worker: sha-1111111 → sha-2222222"
    );
    assert_eq!(
        desk.git(repo.path(), &["diff", "--numstat", "HEAD~1", "HEAD"]),
        "1\t1\tcompose.yaml\n"
    );
}

#[test]
fn rollback_reverts_the_last_image_change_past_later_unrelated_commits() {
    let desk = Desk::new();
    let repo = TempDir::default();
    desk.repo(repo.path(), &[("compose.yaml", GOLDEN)]);
    let run = desk.berth(repo.path(), &["bump", "api", "sha-2222222"]);
    assert_eq!(run.code, 0, "{run:?}");
    let bump = desk
        .git(repo.path(), &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    // Later: another service's release, and a file beside the desired state.
    let later = read(repo.path(), "compose.yaml").replace("redis:7.2", "redis:7.4");
    desk.commit(repo.path(), &[("compose.yaml", &later)], "cache: redis 7.4");
    desk.commit(repo.path(), &[("RUNBOOK.md", "call someone\n")], "runbook");
    let run = desk.berth(repo.path(), &["rollback", "api"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "last change of api: commit {} by Release Bot <bot@example.com> at ",
            &bump[..12]
        )),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(
            "registry.example.com/shop/app:sha-1111111 → registry.example.com/shop/app:sha-2222222"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains(&format!("by reverting commit {}", &bump[..12])),
        "{run:?}"
    );
    assert_eq!(
        desk.subject(repo.path(), "HEAD"),
        "rollback api: sha-2222222 → sha-1111111"
    );
    assert!(desk
        .git(repo.path(), &["log", "-1", "--format=%b"])
        .contains(&format!("This reverts commit {bump}")));
    // api (and worker) back, the cache's later release kept, the runbook kept.
    assert_eq!(
        read(repo.path(), "compose.yaml"),
        GOLDEN.replace("redis:7.2", "redis:7.4")
    );
    assert_eq!(
        desk.git(repo.path(), &["diff", "--numstat", "HEAD~1", "HEAD"]),
        "1\t1\tcompose.yaml\n"
    );
    assert_eq!(read(repo.path(), "RUNBOOK.md"), "call someone\n");
    assert_eq!(desk.git(repo.path(), &["status", "--porcelain"]), "");
}

#[test]
fn rollback_of_a_commit_that_changed_more_writes_the_previous_image() {
    let desk = Desk::new();
    let repo = TempDir::default();
    desk.repo(repo.path(), &[("compose.yaml", GOLDEN)]);
    // One commit moves the image and adds a setting: its revert would drop the setting.
    let both = GOLDEN
        .replace("shop/app:sha-1111111", "shop/app:sha-2222222")
        .replace(
            "    LOG: info   # keep quiet\n",
            "    LOG: info   # keep quiet\n    FEATURE: \"on\"\n",
        );
    desk.commit(
        repo.path(),
        &[("compose.yaml", &both)],
        "api sha-2222222 with FEATURE",
    );
    let run = desk.berth(repo.path(), &["rollback", "api", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("writing the previous image"), "{run:?}");
    assert_eq!(
        desk.subject(repo.path(), "HEAD"),
        "api sha-2222222 with FEATURE"
    );
    let run = desk.berth(repo.path(), &["rollback", "api"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        desk.subject(repo.path(), "HEAD"),
        "rollback api, worker: sha-2222222 → sha-1111111"
    );
    assert_eq!(
        read(repo.path(), "compose.yaml"),
        both.replace("shop/app:sha-2222222", "shop/app:sha-1111111")
    );
    assert!(desk
        .git(repo.path(), &["log", "-1", "--format=%b"])
        .contains("which does not revert cleanly alone"));
}

#[test]
fn rollback_push_replays_the_revert_on_a_remote_that_moved() {
    let desk = Desk::new();
    let remote = TempDir::default();
    let ours = TempDir::default();
    let theirs = TempDir::default();
    desk.git(remote.path(), &["init", "-q", "--bare"]);
    let remote_url = remote.path().display().to_string();
    desk.repo(ours.path(), &[("compose.yaml", GOLDEN)]);
    desk.git(ours.path(), &["remote", "add", "origin", &remote_url]);
    let run = desk.berth(ours.path(), &["bump", "api", "sha-2222222"]);
    assert_eq!(run.code, 0, "{run:?}");
    desk.git(ours.path(), &["push", "-q", "-u", "origin", "main"]);
    desk.git(theirs.path(), &["clone", "-q", &remote_url, "."]);
    desk.commit(
        theirs.path(),
        &[("RUNBOOK.md", "page the on-call\n")],
        "runbook",
    );
    desk.git(theirs.path(), &["push", "-q", "origin", "main"]);
    let run = desk.berth(ours.path(), &["rollback", "api", "--push"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("pushed (replayed on the remote's new tip after 1 rejected push(es))"),
        "{run:?}"
    );
    let log = desk.git(remote.path(), &["log", "--format=%s", "main"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "rollback api: sha-2222222 → sha-1111111",
            "runbook",
            "bump api, worker: sha-1111111 → sha-2222222",
            "initial desired state"
        ]
    );
    assert_eq!(
        desk.git(remote.path(), &["show", "main:compose.yaml"]),
        GOLDEN
    );
}
