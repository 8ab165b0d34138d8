//! Test images built from the host's static busybox and pushed to the shared
//! loopback registry.
//!
//! The runtime configuration (CMD, HEALTHCHECK, ...) goes on a few base
//! images made with `docker import --change`, and each variant is a
//! one-step `docker build` that adds its files: every metadata instruction of
//! the legacy builder costs about a second, an import about 0.1 s.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;

use super::cleanup;
use super::docker::{docker, repo_digest, require_docker};
use super::registry::{push, registry};
use super::{owner_id, OWNER_LABEL};

const BUSYBOX: &str = "/bin/busybox";

const HEALTHCHECK: &str =
    "HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD wget -q -O- http://127.0.0.1:8000/health";
/// busybox httpd as PID 1 ignores SIGTERM; the shell exits on it instead, so
/// `docker stop` returns at once rather than after the grace period.
const HTTP_CMD: &str = r#"CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8000 -h /www & wait"]"#;
const TOOL_CMD: &str = r#"CMD ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]"#;
const CRASH_CMD: &str = r#"CMD ["sh", "-c", "echo boom; exit 1"]"#;
const PATH_ENV: &str = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Full references (`127.0.0.1:PORT/berth-test/NAME:TAG`) of the test images.
///
/// - `app_v1`, `app_v2`, `app_v3`: busybox httpd on port 8000 serving `/www`;
///   `GET /` answers `v1\n` (`v2\n`, `v3\n`), `GET /health` answers `ok`.
///   HEALTHCHECK every 1 s (timeout 2 s, 2 retries) fetches `/health`.
///   Stops at once on SIGTERM with exit code 0.
/// - `app_unhealthy`: same service and check, but `/health` is missing, so it
///   keeps running and turns `unhealthy` about 2-3 s after start.
///   `GET /` answers `unhealthy\n`.
/// - `app_crash`: prints `boom` and exits with code 1 at once; same check.
/// - `app_nohealth`: the HTTP service without any HEALTHCHECK; `GET /`
///   answers `nohealth\n`.
/// - `tool_v1`, `tool_v2`: plain busybox, CMD sleeps for an hour (exits at
///   once on SIGTERM); meant for one-shot commands. `/version` holds
///   `tool:v1\n` (`tool:v2\n`).
///
/// Every image has `/version` (`NAME:TAG\n`), the full busybox applet set in
/// `/bin`, and a distinct image ID.
#[derive(Debug)]
pub struct Images {
    /// Registry address, `127.0.0.1:PORT`.
    pub registry: String,
    pub app_v1: String,
    pub app_v2: String,
    pub app_v3: String,
    pub app_unhealthy: String,
    pub app_crash: String,
    pub app_nohealth: String,
    pub tool_v1: String,
    pub tool_v2: String,
    digests: BTreeMap<String, String>,
}

impl Images {
    pub fn all(&self) -> [&str; 8] {
        [
            &self.app_v1,
            &self.app_v2,
            &self.app_v3,
            &self.app_unhealthy,
            &self.app_crash,
            &self.app_nohealth,
            &self.tool_v1,
            &self.tool_v2,
        ]
    }

    /// `repository@sha256:...` under which the registry stores `reference`.
    pub fn digest(&self, reference: &str) -> &str {
        self.digests
            .get(reference)
            .unwrap_or_else(|| panic!("{reference} is not a test image"))
    }

    /// `repository:tag` without the registry address (e.g.
    /// `berth-test/app:v1`), for manifest look-ups.
    pub fn repo_tag(&self, reference: &str) -> String {
        reference
            .strip_prefix(&format!("{}/", self.registry))
            .unwrap_or(reference)
            .to_string()
    }
}

/// The test images, built and pushed once per process.
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(build_all)
}

struct Variant {
    name: &'static str,
    base: &'static str,
    files: &'static [(&'static str, &'static str)],
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "app:v1",
        base: "http",
        files: &[("www/index.html", "v1\n"), ("www/health", "ok")],
    },
    Variant {
        name: "app:v2",
        base: "http",
        files: &[("www/index.html", "v2\n"), ("www/health", "ok")],
    },
    Variant {
        name: "app:v3",
        base: "http",
        files: &[("www/index.html", "v3\n"), ("www/health", "ok")],
    },
    Variant {
        name: "app:unhealthy",
        base: "http",
        files: &[("www/index.html", "unhealthy\n")],
    },
    Variant {
        name: "app:crash",
        base: "crash",
        files: &[("www/index.html", "crash\n"), ("www/health", "ok")],
    },
    Variant {
        name: "app:nohealth",
        base: "http-nohealth",
        files: &[("www/index.html", "nohealth\n"), ("www/health", "ok")],
    },
    Variant {
        name: "tool:v1",
        base: "tool",
        files: &[],
    },
    Variant {
        name: "tool:v2",
        base: "tool",
        files: &[],
    },
];

fn base_changes(base: &str) -> Vec<&'static str> {
    match base {
        "http" => vec![HEALTHCHECK, "EXPOSE 8000", HTTP_CMD],
        "http-nohealth" => vec!["EXPOSE 8000", HTTP_CMD],
        "crash" => vec![HEALTHCHECK, CRASH_CMD],
        "tool" => vec![TOOL_CMD],
        other => unreachable!("unknown base {other}"),
    }
}

fn build_all() -> Images {
    require_docker();
    let addr = registry().addr();
    cleanup::sweep_dead_owners();

    let work = tempfile::Builder::new()
        .prefix("berth-test-images-")
        .tempdir()
        .expect("create image build directory");
    let rootfs_tar = work.path().join("rootfs.tar");
    make_rootfs_tar(&work.path().join("rootfs"), &rootfs_tar);

    let owner = format!("LABEL {OWNER_LABEL}={}", owner_id());
    let bases = ["http", "http-nohealth", "crash", "tool"];
    thread::scope(|s| {
        for base in bases {
            let (addr, tar, owner) = (&addr, &rootfs_tar, &owner);
            s.spawn(move || {
                let tag = format!("{addr}/berth-test/base-{base}:latest");
                let mut args = vec!["import".to_string()];
                for change in [PATH_ENV, owner.as_str()]
                    .into_iter()
                    .chain(base_changes(base))
                {
                    args.push("--change".into());
                    args.push(change.into());
                }
                args.push(tar.display().to_string());
                args.push(tag.clone());
                docker(&args);
                cleanup::record_tag(&tag);
            });
        }
    });

    let refs: Vec<String> = VARIANTS
        .iter()
        .map(|v| format!("{addr}/berth-test/{}", v.name))
        .collect();
    thread::scope(|s| {
        for (variant, reference) in VARIANTS.iter().zip(&refs) {
            let ctx = work.path().join(variant.name.replace(':', "-"));
            let addr = &addr;
            s.spawn(move || {
                let version = format!("{}\n", variant.name);
                let files = [("version", version.as_str())]
                    .into_iter()
                    .chain(variant.files.iter().copied());
                let base = format!("{addr}/berth-test/base-{}:latest", variant.base);
                build_pushed(&ctx, &base, files, reference);
            });
        }
    });

    let digests = refs
        .iter()
        .map(|r| {
            let d = repo_digest(r).unwrap_or_else(|| panic!("{r} has no registry digest"));
            (r.clone(), d)
        })
        .collect();

    let mut refs = refs.into_iter();
    let mut next = || refs.next().expect("one reference per variant");
    Images {
        registry: addr.clone(),
        app_v1: next(),
        app_v2: next(),
        app_v3: next(),
        app_unhealthy: next(),
        app_crash: next(),
        app_nohealth: next(),
        tool_v1: next(),
        tool_v2: next(),
        digests,
    }
}

/// Builds `reference` in the context directory `ctx` (made here): `FROM base` with
/// `files` (path in the image, content) copied in; then pushes it to its registry and
/// records its tag for the clean-up.
pub fn build_pushed<'f>(
    ctx: &Path,
    base: &str,
    files: impl IntoIterator<Item = (&'f str, &'f str)>,
    reference: &str,
) {
    let root = ctx.join("root");
    fs::create_dir_all(&root).expect("create build context");
    for (path, content) in files {
        let file = root.join(path);
        fs::create_dir_all(file.parent().expect("file has a parent"))
            .expect("create context directory");
        fs::write(file, content).expect("write context file");
    }
    fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nCOPY root/ /\n"),
    )
    .expect("write Dockerfile");
    let out = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", reference])
        .arg(ctx)
        .stdin(Stdio::null())
        .output()
        .expect("run docker build");
    assert!(
        out.status.success(),
        "docker build of {reference} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cleanup::record_tag(reference);
    push(reference);
}

/// A root filesystem holding the static busybox and a symlink per applet, tarred.
fn make_rootfs_tar(root: &Path, tar: &Path) {
    make_rootfs(root);
    tar_rootfs(root, tar);
}

/// A root filesystem holding the static busybox and a symlink per applet.
fn make_rootfs(root: &Path) {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} is missing; install Debian's busybox-static package"
    );
    for dir in [
        "bin", "etc", "tmp", "www", "root", "proc", "sys", "dev", "var",
    ] {
        fs::create_dir_all(root.join(dir)).expect("create rootfs directory");
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod /tmp");
    fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    let applets = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("list busybox applets");
    for applet in String::from_utf8_lossy(&applets.stdout).split_whitespace() {
        if applet != "busybox" && !applet.contains('/') {
            symlink("busybox", root.join("bin").join(applet)).expect("link applet");
        }
    }
    for dir in ["usr/bin", "usr/sbin", "sbin"] {
        fs::create_dir_all(root.join(dir)).expect("create rootfs directory");
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("write /etc/passwd");
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("write /etc/group");
}

fn tar_rootfs(root: &Path, tar: &Path) {
    let status = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(root)
        .arg("-cf")
        .arg(tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar of the test rootfs failed");
}

const CADDY: &str = "/usr/bin/caddy";

/// A Caddy image (`127.0.0.1:PORT/berth-test/caddy:2`) made from Debian's `caddy`
/// binary, the libraries `ldd` names and the busybox root filesystem; it runs
/// `caddy run` on `/etc/caddy/Caddyfile`. Built and pushed once per process.
pub fn caddy_image() -> &'static str {
    static CADDY_IMAGE: OnceLock<String> = OnceLock::new();
    CADDY_IMAGE.get_or_init(build_caddy)
}

fn build_caddy() -> String {
    assert!(
        Path::new(CADDY).exists(),
        "{CADDY} is missing; install Debian's caddy package"
    );
    let addr = &images().registry;
    let work = tempfile::Builder::new()
        .prefix("berth-test-caddy-")
        .tempdir()
        .expect("create image build directory");
    let root = work.path().join("rootfs");
    let tar = work.path().join("rootfs.tar");
    let ldd = Command::new("ldd").arg(CADDY).output().expect("run ldd");
    let libs: Vec<String> = String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(str::to_string)
        .collect();
    make_rootfs(&root);
    for file in libs.iter().map(String::as_str).chain([CADDY]) {
        let to = root.join(file.trim_start_matches('/'));
        fs::create_dir_all(to.parent().expect("file has a parent")).expect("create lib dir");
        fs::copy(file, &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    tar_rootfs(&root, &tar);
    let reference = format!("{addr}/berth-test/caddy:2");
    let owner = format!("LABEL {OWNER_LABEL}={}", owner_id());
    docker([
        "import",
        "--change",
        PATH_ENV,
        "--change",
        &owner,
        "--change",
        "ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config",
        "--change",
        r#"CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]"#,
        &tar.display().to_string(),
        &reference,
    ]);
    cleanup::record_tag(&reference);
    push(&reference);
    reference
}
