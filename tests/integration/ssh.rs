//! The git source over ssh: a real sshd on loopback, a key, and known_hosts checked.

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
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/hostkey\nAuthorizedKeysFile {0}/authorized_keys\nPasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile {0}/sshd.pid\n",
            dir.display()
        );
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
            agent.status()["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("hostkey"))
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
