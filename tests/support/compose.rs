//! docker compose (Debian's `docker-compose`, v1) running a stack the way a host runs
//! it before berth: a project directory, `up -d`, and a client that measures a
//! published port from the host.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A compose project directory `<tmp>/repo/<project>/` holding `compose.yaml`, inside a
/// repository root (`<tmp>/repo/.git`), so that berth, like compose, takes the project
/// name from the directory. Objects are removed by the test's [`super::Project`] guard.
pub struct ComposeDir {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    project: String,
}

impl ComposeDir {
    /// A directory for `project` with `compose.yaml` holding `yaml`.
    pub fn new(project: &str, yaml: &str) -> ComposeDir {
        assert!(
            Command::new("docker-compose")
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "this test needs docker compose v1: install Debian's docker-compose"
        );
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("repo/.git")).unwrap();
        let dir = tmp.path().join("repo").join(project);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
        ComposeDir {
            _tmp: tmp,
            dir,
            project: project.to_string(),
        }
    }

    /// Writes a file beside `compose.yaml`.
    pub fn file(&self, name: &str, content: &str) -> &Self {
        std::fs::write(self.dir.join(name), content).unwrap();
        self
    }

    /// The compose file.
    pub fn file_path(&self) -> PathBuf {
        self.dir.join("compose.yaml")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `docker-compose -p PROJECT -f compose.yaml ARGS`, panicking when it fails.
    pub fn compose(&self, args: &[&str]) -> String {
        let out = Command::new("docker-compose")
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(self.file_path())
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("docker-compose runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed:\n{text}"
        );
        text
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the engine binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `GET /` over HTTP/1.0 to 127.0.0.1:`port`: the body of a 200 answer.
pub fn get(port: u16, timeout: Duration) -> Option<String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    (status.starts_with("HTTP/1.") && status.split(' ').nth(1) == Some("200"))
        .then(|| body.trim_end().to_string())
}

/// Requests `GET /` on a host port every 20 ms from a thread, with the time of each.
pub struct PortLoop {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(Instant, bool)>>>,
    thread: Option<JoinHandle<()>>,
}

/// What a [`PortLoop`] saw.
#[derive(Debug, Clone, Default)]
pub struct PortReport {
    pub ok: usize,
    pub fail: usize,
    /// The longest time from the last answer before a failure to the first answer
    /// after it.
    pub longest_gap: Duration,
    /// Every such gap: when it began (since the loop started) and how long it lasted.
    pub gaps: Vec<(Duration, Duration)>,
}

impl PortLoop {
    pub fn start(port: u16, expect: &str) -> PortLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples, expect) = (stop.clone(), samples.clone(), expect.to_string());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = get(port, Duration::from_secs(2)).is_some_and(|b| b == expect);
                    samples.lock().unwrap().push((Instant::now(), ok));
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        PortLoop {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// Time since the first request.
    pub fn age(&self) -> Duration {
        self.samples
            .lock()
            .unwrap()
            .first()
            .map(|s| s.0.elapsed())
            .unwrap_or_default()
    }

    /// Answers seen so far.
    pub fn ok(&self) -> usize {
        self.samples.lock().unwrap().iter().filter(|s| s.1).count()
    }

    /// Stops the loop and sums up.
    pub fn stop(mut self) -> PortReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let samples = self.samples.lock().unwrap();
        let mut r = PortReport::default();
        let first = samples.first().map(|s| s.0).unwrap_or_else(Instant::now);
        let mut last_ok: Option<Instant> = None;
        let mut failing = false;
        for (at, ok) in samples.iter() {
            if *ok {
                r.ok += 1;
                if failing {
                    if let Some(before) = last_ok {
                        r.longest_gap = r.longest_gap.max(*at - before);
                        r.gaps.push((before - first, *at - before));
                    }
                    failing = false;
                }
                last_ok = Some(*at);
            } else {
                r.fail += 1;
                failing = true;
            }
        }
        r
    }
}

impl Drop for PortLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
