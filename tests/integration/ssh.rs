//! The git source over ssh: a real sshd on loopback, keys (plain, with a passphrase,
//! in a real ssh-agent), and known_hosts as OpenSSH writes it (hashed, `[host]:port`,
//! `@revoked`, `@cert-authority` with a host certificate the sshd presents).

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use crate::agent::{api_images, free_port, Agent, Repo};
use crate::support::{images, wait_until, Project};
use crate::TempDir;

/// An sshd on 127.0.0.1 that accepts one client key for the current user.
struct Sshd {
    child: Child,
    port: u16,
}

impl Sshd {
    fn start(dir: &Path, client_pub: &Path) -> Self {
        Self::start_certified(dir, client_pub, None)
    }

    /// With `Some((ca, principals))`, the host key is certified by the CA key `ca` for
    /// `principals` and the sshd presents the certificate (`HostCertificate`).
    fn start_certified(dir: &Path, client_pub: &Path, certify: Option<(&Path, &str)>) -> Self {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "/usr/sbin/sshd is missing; install openssh-server (.ci/run does)"
        );
        let port = free_port();
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join("hostkey"))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        std::fs::copy(client_pub, dir.join("authorized_keys")).unwrap();
        let mut config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/hostkey\nAuthorizedKeysFile {0}/authorized_keys\nPasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile {0}/sshd.pid\n",
            dir.display()
        );
        if let Some((ca, principals)) = certify {
            let signed = Command::new("ssh-keygen")
                .args(["-q", "-s"])
                .arg(ca)
                .args(["-h", "-I", "berth-test-host", "-n", principals])
                .arg(dir.join("hostkey.pub"))
                .status()
                .unwrap();
            assert!(signed.success());
            config.push_str(&format!(
                "HostCertificate {}/hostkey-cert.pub\n",
                dir.display()
            ));
        }
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(sshd)
            .args(["-D", "-f"])
            .arg(dir.join("sshd_config"))
            .arg("-E")
            .arg(dir.join("sshd.log"))
            .spawn()
            .unwrap();
        assert!(wait_until(
            Duration::from_secs(10),
            Duration::from_millis(50),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        ));
        Self { child, port }
    }

    /// A known_hosts line for this server.
    fn known_hosts(&self, dir: &Path) -> String {
        let public = std::fs::read_to_string(dir.join("hostkey.pub")).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        format!("[127.0.0.1]:{} {}\n", self.port, key.join(" "))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_ssh_remote_with_a_checked_host_key() {
    let p = Project::new("ssh");
    let img = images();
    let dir = TempDir::default();
    let key = dir.path().join("client");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let sshd = Sshd::start(dir.path(), &key.with_extension("pub"));
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, sshd.known_hosts(dir.path())).unwrap();
    let wrong = dir.path().join("wrong_hosts");
    std::fs::write(&wrong, format!("[127.0.0.1]:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO3QkZbJdn0TtU9lIEADGF14trpMKTKOcEeHpBXX0tdX\n", sshd.port)).unwrap();

    let repo = Repo::new();
    repo.commit(
        &format!(
            "project: {}\nservices:\n  api:\n    image: {}\n    update: {{ monitor: 0s }}\n",
            p.name(),
            img.app_v1
        ),
        "first",
    );
    let user = String::from_utf8(Command::new("whoami").output().unwrap().stdout).unwrap();
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        user.trim(),
        sshd.port,
        repo.path().display()
    );

    // A host key not in known_hosts: nothing is fetched, the refusal is reported.
    let refused = TempDir::default();
    let agent = Agent::start(
        &url,
        refused.path(),
        &[
            "--git-ssh-key",
            &key.display().to_string(),
            "--git-known-hosts",
            &wrong.display().to_string(),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            agent.status()["last_error"].as_str().is_some_and(|e| {
                e.contains(&format!("host key of [127.0.0.1]:{} ", sshd.port))
                    && e.contains("has CHANGED")
            })
        }),
        "{}",
        agent.log()
    );
    assert!(api_images(&p).is_empty());
    drop(agent);

    let state = TempDir::default();
    let agent = Agent::start(
        &url,
        state.path(),
        &[
            "--git-ssh-key",
            &key.display().to_string(),
            "--git-known-hosts",
            &known.display().to_string(),
            "--interval",
            "1s",
        ],
    );
    assert!(
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || api_images(&p) == [format!("{}-api-1 {}", p.name(), img.app_v1)]
        ),
        "{}",
        agent.log()
    );
    repo.commit(
        &format!(
            "project: {}\nservices:\n  api:\n    image: {}\n    update: {{ monitor: 0s }}\n",
            p.name(),
            img.app_v2
        ),
        "bump",
    );
    assert!(
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || api_images(&p) == [format!("{}-api-1 {}", p.name(), img.app_v2)]
        ),
        "{}",
        agent.log()
    );
}

/// `ssh-keygen` with `args`, asserting it succeeds.
fn ssh_keygen(args: &[&str], path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(args)
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) runs");
    assert!(ok.success(), "ssh-keygen {args:?} {}", path.display());
}

/// An ed25519 key at `dir/name`, encrypted with `passphrase` when it is not empty.
fn client_key(dir: &Path, name: &str, passphrase: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    ssh_keygen(
        &["-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f"],
        &key,
    );
    key
}

/// An sshd, a repository behind it holding one service of a fresh project, and the
/// key the sshd accepts.
struct Bed {
    dir: TempDir,
    key: std::path::PathBuf,
    sshd: Sshd,
    _repo: Repo,
    url: String,
    project: Project,
}

impl Bed {
    /// `passphrase` encrypts the client key; `certify` as [`Sshd::start_certified`].
    fn new(name: &str, passphrase: &str, certify: Option<(&Path, &str)>) -> Self {
        let project = Project::new(name);
        let dir = TempDir::default();
        let key = client_key(dir.path(), "client", passphrase);
        let sshd = Sshd::start_certified(dir.path(), &key.with_extension("pub"), certify);
        let repo = Repo::new();
        repo.commit(
            &format!(
                "project: {}\nservices:\n  api:\n    image: {}\n    update: {{ monitor: 0s }}\n",
                project.name(),
                images().app_v1
            ),
            "first",
        );
        let user = String::from_utf8(Command::new("whoami").output().unwrap().stdout).unwrap();
        let url = format!(
            "ssh://{}@127.0.0.1:{}{}",
            user.trim(),
            sshd.port,
            repo.path().display()
        );
        Self {
            dir,
            key,
            sshd,
            _repo: repo,
            url,
            project,
        }
    }

    /// A file in the bed's directory.
    fn file(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The server's host key, `type base64`.
    fn host_key(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("hostkey.pub")).unwrap();
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The host key's `SHA256:` fingerprint, as ssh-keygen prints it.
    fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("hostkey.pub"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    }

    /// One `berth apply` of the repository over ssh, with `flags` and `env` for the
    /// berth process only (its SSH_AUTH_SOCK is the one in `env` or none).
    fn apply(&self, flags: &[&str], env: &[(&str, &str)]) -> crate::Run {
        let state = TempDir::default();
        let env_dir = TempDir::default();
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args([
                "apply",
                "--repo",
                &self.url,
                "--drain",
                "300ms",
                "--state-dir",
            ])
            .arg(state.path())
            .arg("--env-dir")
            .arg(env_dir.path())
            .args(flags)
            .env("RUST_LOG", "info")
            .env_remove("SSH_AUTH_SOCK")
            .envs(env.iter().copied())
            .output()
            .expect("berth runs");
        crate::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// True when the project runs the first commit's image.
    fn converged(&self) -> bool {
        api_images(&self.project) == [format!("{}-api-1 {}", self.project.name(), images().app_v1)]
    }
}

fn known(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn a_hashed_known_hosts_and_a_key_with_a_passphrase() {
    let bed = Bed::new("sshhash", "correct horse battery", None);
    let hosts = bed.file(
        "known_hosts",
        &format!("[127.0.0.1]:{} {}\n", bed.sshd.port, bed.host_key()),
    );
    // As OpenSSH hashes it: the name is gone from the file.
    ssh_keygen(&["-q", "-H", "-f"], &hosts);
    let text = std::fs::read_to_string(&hosts).unwrap();
    assert!(
        text.starts_with("|1|") && !text.contains("127.0.0.1"),
        "{text}"
    );
    let key = known(&bed.key);
    let kh = known(&hosts);

    // The key is encrypted and no passphrase is given: said so, nothing applied.
    let run = bed.apply(&["--git-ssh-key", &key, "--git-known-hosts", &kh], &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "the key {key} is encrypted: give its passphrase with --git-ssh-passphrase-file"
        )),
        "{run:?}"
    );
    // A wrong passphrase: said so, and the passphrase tried is not printed.
    let wrong = bed.file("wrong-pass", "Tr0ub4dor&3\n");
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let run = bed.apply(
        &[
            "--git-ssh-key",
            &key,
            "--git-ssh-passphrase-file",
            &known(&wrong),
            "--git-known-hosts",
            &kh,
        ],
        &[],
    );
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("the passphrase is wrong"), "{run:?}");
    assert!(
        !run.stderr.contains("Tr0ub4dor") && !run.stdout.contains("Tr0ub4dor"),
        "{run:?}"
    );
    assert!(api_images(&bed.project).is_empty());
    // A passphrase file others can read is refused before anything is fetched.
    let pass = bed.file("pass", "correct horse battery\n");
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let flags = [
        "--git-ssh-key",
        &key,
        "--git-ssh-passphrase-file",
        &known(&pass),
        "--git-known-hosts",
        &kh,
    ];
    let run = bed.apply(&flags, &[]);
    assert!(run.stderr.contains("chmod 600"), "{run:?}");
    assert!(!run.stderr.contains("correct horse"), "{run:?}");

    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let run = bed.apply(&flags, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(bed.converged(), "{run:?}");
    assert!(!run.stderr.contains("correct horse") && !run.stdout.contains("correct horse"));
}

#[test]
fn unknown_changed_and_revoked_host_keys_are_refused() {
    let bed = Bed::new("sshrefuse", "", None);
    let key = known(&bed.key);
    let port = bed.sshd.port;
    let refused = |known_hosts: &str, want: &[String]| {
        let hosts = bed.file("known_hosts", known_hosts);
        let run = bed.apply(
            &["--git-ssh-key", &key, "--git-known-hosts", &known(&hosts)],
            &[],
        );
        assert_ne!(run.code, 0, "{run:?}");
        for w in want {
            assert!(run.stderr.contains(w.as_str()), "{w}: {run:?}");
        }
        assert!(api_images(&bed.project).is_empty(), "{run:?}");
    };
    let other = client_key(bed.dir.path(), "other", "");
    let other_key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key: Vec<&str> = other_key.split_whitespace().take(2).collect();
    let other_key = other_key.join(" ");
    // Listed on port 22 only: OpenSSH looks the host up as [127.0.0.1]:PORT.
    refused(
        &format!("127.0.0.1 {}\n", bed.host_key()),
        &[
            format!(
                "host key of [127.0.0.1]:{port} (ssh-ed25519 {}) is not in",
                bed.fingerprint()
            ),
            format!("ssh-keyscan -p {port} 127.0.0.1 >> "),
        ],
    );
    refused(
        &format!("[127.0.0.1]:{port} {other_key}\n"),
        &[
            format!("host key of [127.0.0.1]:{port} has CHANGED"),
            bed.fingerprint(),
        ],
    );
    refused(
        &format!("[127.0.0.1]:{port} {0}\n@revoked * {0}\n", bed.host_key()),
        &[format!(
            "host key of [127.0.0.1]:{port} ({}) is REVOKED",
            bed.fingerprint()
        )],
    );
    // A key the server does not accept: said which, for which user.
    let hosts = bed.file(
        "known_hosts",
        &format!("[127.0.0.1]:{port} {}\n", bed.host_key()),
    );
    let run = bed.apply(
        &[
            "--git-ssh-key",
            &known(&other),
            "--git-known-hosts",
            &known(&hosts),
        ],
        &[],
    );
    assert_ne!(run.code, 0, "{run:?}");
    let said = format!("the server refused the key {} for user ", other.display());
    assert!(run.stderr.contains(&said), "{run:?}");
    assert!(run.stderr.contains("as a deploy key"), "{run:?}");
    // Without a known_hosts file: refused, with the fingerprint to check.
    let run = bed.apply(&["--git-ssh-key", &key], &[]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("ssh remotes need --git-known-hosts FILE"),
        "{run:?}"
    );
    assert!(run.stderr.contains(&bed.fingerprint()), "{run:?}");

    // Patterns with a negation that excludes this port, then one that names it.
    refused(
        &format!("[127.0.0.1]:*,![127.0.0.1]:{port} {}\n", bed.host_key()),
        &["is not in".to_string()],
    );
    let hosts = bed.file(
        "known_hosts",
        &format!("other.example,[127.0.0.?]:* {}\n", bed.host_key()),
    );
    let run = bed.apply(
        &["--git-ssh-key", &key, "--git-known-hosts", &known(&hosts)],
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(bed.converged(), "{run:?}");
}

/// A real ssh-agent on a socket of its own, stopped on drop.
struct SshAgent {
    child: Child,
    socket: std::path::PathBuf,
}

impl SshAgent {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) runs");
        assert!(wait_until(
            Duration::from_secs(10),
            Duration::from_millis(20),
            || socket.exists()
        ));
        Self { child, socket }
    }

    fn add(&self, key: &Path) {
        let ok = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn socket(&self) -> String {
        self.socket.display().to_string()
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn keys_from_a_real_ssh_agent() {
    let bed = Bed::new("sshagent", "", None);
    let hosts = bed.file(
        "known_hosts",
        &format!("[127.0.0.1]:{} {}\n", bed.sshd.port, bed.host_key()),
    );
    let flags = ["--git-known-hosts", &known(&hosts)];
    let agent = SshAgent::start(bed.dir.path());
    let env = [("SSH_AUTH_SOCK", agent.socket())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // An empty agent, then one holding only a key the server does not know.
    let run = bed.apply(&flags, &env);
    assert_ne!(run.code, 0, "{run:?}");
    let said = format!(
        "the server refused every key of the ssh-agent at {}",
        agent.socket()
    );
    assert!(run.stderr.contains(&said), "{run:?}");
    agent.add(&client_key(bed.dir.path(), "stranger", ""));
    let run = bed.apply(&flags, &env);
    assert!(run.stderr.contains(&said), "{run:?}");
    assert!(api_images(&bed.project).is_empty());
    // Neither a key file nor an agent.
    let run = bed.apply(&flags, &[]);
    assert!(
        run.stderr
            .contains("give --git-ssh-key FILE, or run berth with SSH_AUTH_SOCK"),
        "{run:?}"
    );

    agent.add(&bed.key);
    let run = bed.apply(&flags, &env);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(bed.converged(), "{run:?}");
}

#[test]
fn a_host_certificate_signed_by_a_listed_ca() {
    let cas = TempDir::default();
    let ca = client_key(cas.path(), "ca", "");
    let ca_key = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    let bed = Bed::new("sshcert", "", Some((&ca, "127.0.0.1")));
    let key = known(&bed.key);
    let port = bed.sshd.port;
    // Only the CA is listed: the sshd's certificate is what is checked.
    let hosts = bed.file(
        "known_hosts",
        &format!("@cert-authority [127.0.0.1]:* {ca_key}"),
    );
    let flags = ["--git-ssh-key", &key, "--git-known-hosts", &known(&hosts)];
    let run = bed.apply(&flags, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(bed.converged(), "{run:?}");

    // Another CA: refused, and the certificate's refusal is said.
    let other = client_key(cas.path(), "other-ca", "");
    let other_key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let hosts = bed.file("known_hosts", &format!("@cert-authority * {other_key}"));
    let run = bed.apply(
        &["--git-ssh-key", &key, "--git-known-hosts", &known(&hosts)],
        &[],
    );
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("the server's host certificate was refused"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains(&format!("ssh-keyscan -p {port} 127.0.0.1")),
        "{run:?}"
    );
    // The CA revoked.
    let hosts = bed.file(
        "known_hosts",
        &format!("@cert-authority * {ca_key}@revoked * {ca_key}"),
    );
    let run = bed.apply(
        &["--git-ssh-key", &key, "--git-known-hosts", &known(&hosts)],
        &[],
    );
    assert!(run.stderr.contains("is REVOKED"), "{run:?}");
}

#[test]
fn a_host_certificate_for_another_name_is_refused() {
    let cas = TempDir::default();
    let ca = client_key(cas.path(), "ca", "");
    let ca_key = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    let bed = Bed::new("sshcertname", "", Some((&ca, "git.example.com")));
    let hosts = bed.file("known_hosts", &format!("@cert-authority * {ca_key}"));
    let run = bed.apply(
        &[
            "--git-ssh-key",
            &known(&bed.key),
            "--git-known-hosts",
            &known(&hosts),
        ],
        &[],
    );
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("its principals (git.example.com) do not include 127.0.0.1"),
        "{run:?}"
    );
    assert!(api_images(&bed.project).is_empty());
}
