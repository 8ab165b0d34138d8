//! Headless Chromium driven over the DevTools protocol on `--remote-debugging-pipe`
//! (JSON messages separated by NUL on fds 3 and 4): a page loaded with or without
//! script, its DOM read back, what it logged and which requests failed.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

/// A browser and one page of it.
pub struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: BufReader<std::io::PipeReader>,
    next: u64,
    session: String,
    /// Every event seen so far, in order.
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with one blank page; with `script` false, the page runs none.
    pub fn start(script: bool) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let (child_reads, to) = std::io::pipe().unwrap();
        let (from, child_writes) = std::io::pipe().unwrap();
        let (r, w) = (child_reads.as_raw_fd(), child_writes.as_raw_fd());
        let mut cmd = Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--remote-debugging-pipe",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(profile.path().join("stderr")).unwrap());
        // SAFETY: only async-signal-safe fcntl and dup2 calls between fork and exec.
        // Both ends are first copied above 10, so that neither is overwritten by the
        // other's dup2, and the copies on 3 and 4 are inherited (dup2 clears
        // close-on-exec).
        unsafe {
            cmd.pre_exec(move || {
                let r = libc::fcntl(r, libc::F_DUPFD, 10);
                let w = libc::fcntl(w, libc::F_DUPFD, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .expect("chromium runs (apt-get install chromium)");
        drop(child_reads);
        drop(child_writes);
        let mut b = Self {
            child,
            to,
            from: BufReader::new(from),
            next: 0,
            session: String::new(),
            events: Vec::new(),
            _profile: profile,
        };
        let targets = b.call(None, "Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page")["targetId"]
            .clone();
        let attached = b.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": page, "flatten": true }),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Network.enable",
            "Log.enable",
        ] {
            b.page(domain, json!({}));
        }
        if !script {
            b.page(
                "Emulation.setScriptExecutionDisabled",
                json!({ "value": true }),
            );
        }
        b
    }

    fn read(&mut self) -> Value {
        let mut buf = Vec::new();
        let n = self.from.read_until(0, &mut buf).unwrap();
        assert!(
            n > 0,
            "chromium closed its pipe:\n{}",
            std::fs::read_to_string(self._profile.path().join("stderr")).unwrap_or_default()
        );
        buf.pop();
        serde_json::from_slice(&buf).unwrap()
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        if let Err(e) = self.to.write_all(&bytes) {
            let log = std::fs::read_to_string(self._profile.path().join("stderr"));
            panic!("{method}: {e}\n{}", log.unwrap_or_default());
        }
        loop {
            let v = self.read();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    /// A command to the page.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    /// Waits for an event named `method`, seen already or to come.
    pub fn wait_event(&mut self, method: &str) -> Value {
        if let Some(e) = self.events.iter().find(|e| e["method"] == method) {
            return e.clone();
        }
        loop {
            let v = self.read();
            if v.get("method").is_some() {
                self.events.push(v.clone());
                if v["method"] == method {
                    return v;
                }
            }
        }
    }

    /// Loads `url` and waits for its load event.
    pub fn open(&mut self, url: &str) {
        self.events.clear();
        let r = self.page("Page.navigate", json!({ "url": url }));
        assert!(r.get("errorText").is_none(), "{url}: {r}");
        self.wait_event("Page.loadEventFired");
    }

    /// The DOM as it is now.
    pub fn dom(&mut self) -> String {
        let doc = self.page("DOM.getDocument", json!({ "depth": -1 }));
        let node = doc["root"]["nodeId"].clone();
        self.page("DOM.getOuterHTML", json!({ "nodeId": node }))["outerHTML"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Console messages, log entries, exceptions and failed requests seen so far.
    pub fn complaints(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| {
                matches!(
                    e["method"].as_str(),
                    Some(
                        "Runtime.consoleAPICalled"
                            | "Runtime.exceptionThrown"
                            | "Log.entryAdded"
                            | "Network.loadingFailed"
                    )
                ) || (e["method"] == "Network.responseReceived"
                    && e["params"]["response"]["status"].as_u64().unwrap_or(0) >= 400)
            })
            .map(|e| e.to_string())
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
