//! A Docker registry on loopback, served by Debian's `docker-registry`.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::cleanup;
use super::docker::{docker, docker_try, require_docker, wait_until};

const BINARY: &str = "docker-registry";

/// Shell script that outlives the test process by at most a second: when the
/// process that started the registry is gone, it stops the registry and
/// removes its files. Exit hooks do not run when a test process is killed.
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
pid=$(cat "$2" 2>/dev/null) && [ -n "$pid" ] && kill "$pid" 2>/dev/null
rm -rf "$3"
"#;

/// A `docker-registry serve` process on `127.0.0.1:PORT` with its own
/// storage, plain HTTP (the engine allows that for loopback registries) and
/// deletion enabled.
pub struct Registry {
    port: u16,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
    watchdog: cleanup::Watchdog,
}

/// The registry shared by every test of this process; images are pushed
/// here. Stopping it disturbs tests running in parallel that pull: tests
/// about an unreachable registry should use their own [`Registry::new`].
pub fn registry() -> &'static Registry {
    static SHARED: OnceLock<Registry> = OnceLock::new();
    SHARED.get_or_init(|| {
        let r = Registry::with_auth(None);
        cleanup::on_exit(|| {
            if let Some(r) = SHARED.get() {
                r.shutdown();
            }
        });
        r
    })
}

impl Registry {
    /// A private registry with its own port and storage, stopped and deleted
    /// when dropped.
    pub fn new() -> Registry {
        Registry::with_auth(None)
    }

    /// A private registry that requires HTTP basic auth; `htpasswd` is the
    /// content of an htpasswd file with bcrypt entries (`user:$2y$...`).
    pub fn with_htpasswd(htpasswd: &str) -> Registry {
        Registry::with_auth(Some(htpasswd))
    }

    fn with_auth(htpasswd: Option<&str>) -> Registry {
        require_docker();
        // The free port is only reserved once the registry binds it; another
        // process may take it first, so a failed start retries elsewhere.
        let mut error = String::new();
        for _ in 0..3 {
            let r = Registry::prepare(htpasswd);
            match r.try_start() {
                Ok(()) => return r,
                Err(e) => error = e,
            }
        }
        panic!("{error}");
    }

    /// Port, storage, config and watchdog of a registry not yet started.
    fn prepare(htpasswd: Option<&str>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-registry-")
            .tempdir()
            .expect("create registry directory")
            .keep();
        let port = free_port();
        let storage = dir.join("storage");
        fs::create_dir(&storage).expect("create registry storage");
        let auth = match htpasswd {
            Some(entries) => {
                let file = dir.join("htpasswd");
                fs::write(&file, entries).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n{auth}",
            storage.display()
        );
        fs::write(dir.join("config.yml"), config).expect("write registry config");

        let watchdog = cleanup::Watchdog::spawn(
            WATCHDOG,
            "berth-test-registry-watchdog",
            &[
                dir.join("registry.pid").into_os_string(),
                dir.clone().into_os_string(),
            ],
        );

        Registry {
            port,
            dir,
            child: Mutex::new(None),
            watchdog,
        }
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory the registry keeps its blobs and manifests in.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.join("storage")
    }

    /// The registry's own log (warnings and errors).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the registry (again) on the same port and storage, and waits
    /// until it answers. Does nothing when it already runs.
    pub fn start(&self) {
        if let Err(e) = self.try_start() {
            panic!("{e}");
        }
    }

    fn try_start(&self) -> Result<(), String> {
        let mut child = self.lock_child();
        if let Some(c) = child.as_mut() {
            if matches!(c.try_wait(), Ok(None)) {
                return Ok(());
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("registry.log"))
            .map_err(|e| format!("open registry log: {e}"))?;
        let mut spawned = Command::new(BINARY)
            .arg("serve")
            .arg(self.dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| format!("clone log handle: {e}"))?,
            )
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!("cannot run `{BINARY}` ({e}); install Debian's docker-registry package")
            })?;
        fs::write(self.dir.join("registry.pid"), spawned.id().to_string())
            .map_err(|e| format!("write registry pid file: {e}"))?;
        let up = wait_until(Duration::from_secs(20), Duration::from_millis(25), || {
            !matches!(spawned.try_wait(), Ok(None)) || self.v2_status(None).is_some()
        });
        // A registry that lost the port to another process answers through
        // that process for a moment before it exits: give it time to fail.
        let exited = wait_until(
            Duration::from_millis(100),
            Duration::from_millis(20),
            || !matches!(spawned.try_wait(), Ok(None)),
        );
        if !up || exited {
            let _ = fs::write(self.dir.join("registry.pid"), "");
            let _ = spawned.kill();
            let status = spawned.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(format!(
                "registry on {} did not start ({}):\n{}",
                self.addr(),
                if exited {
                    status
                } else {
                    "no answer within 20 s".to_string()
                },
                self.log()
            ));
        }
        *child = Some(spawned);
        Ok(())
    }

    /// Stops the registry; its port then refuses connections. Content stays
    /// for a later [`Registry::start`].
    pub fn stop(&self) {
        let mut child = self.lock_child();
        if let Some(mut c) = child.take() {
            let _ = fs::write(self.dir.join("registry.pid"), "");
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.v2_status(None).is_some()
    }

    /// HTTP status of `GET /v2/`, or `None` when nothing answers.
    pub fn v2_status(&self, basic_auth: Option<(&str, &str)>) -> Option<u16> {
        self.http_status("GET", "/v2/", basic_auth, &[])
    }

    /// HTTP status of a request to the registry API, e.g. a manifest HEAD.
    pub fn http_status(
        &self,
        method: &str,
        path: &str,
        basic_auth: Option<(&str, &str)>,
        headers: &[(&str, &str)],
    ) -> Option<u16> {
        let addr: SocketAddr = self.addr().parse().ok()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr()
        );
        if let Some((user, pass)) = basic_auth {
            req.push_str(&format!(
                "Authorization: Basic {}\r\n",
                base64(format!("{user}:{pass}").as_bytes())
            ));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).ok()?;
        let mut head = Vec::new();
        let mut buf = [0u8; 512];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let n = s.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some(v) if v.starts_with("HTTP/") => parts.next()?.parse().ok(),
            _ => None,
        }
    }

    /// Whether the registry has a manifest for `repo:tag` (repo without the
    /// registry address, e.g. `berth-test/app`).
    pub fn has_manifest(&self, repo: &str, tag: &str) -> bool {
        self.http_status(
            "HEAD",
            &format!("/v2/{repo}/manifests/{tag}"),
            None,
            &[(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json",
            )],
        ) == Some(200)
    }

    /// Tags a local image as `ADDR/repo:tag`, pushes it here and returns the
    /// new reference. The local tag is removed when the process exits.
    pub fn push_copy(&self, source: &str, repo: &str, tag: &str) -> String {
        let target = format!("{}/{repo}:{tag}", self.addr());
        docker(["tag", source, &target]);
        cleanup::record_tag(&target);
        push(&target);
        target
    }

    /// Stops the registry and its watchdog and deletes its storage.
    fn shutdown(&self) {
        self.stop();
        self.watchdog.disarm();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Pushes a reference, retrying briefly: a registry just (re)started can
/// refuse the first upload.
pub(crate) fn push(reference: &str) {
    let mut last = String::new();
    for _ in 0..3 {
        match docker_try(["push", "-q", reference]) {
            Ok(_) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{last}");
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    l.local_addr().expect("local address").port()
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
