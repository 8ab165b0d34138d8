//! Secrets committed encrypted (`.age`), with fixtures made by the real `age` tool: they
//! decrypt on the host and reach the container, a file for another host fails its service
//! with nothing started, a rotation by commit or on the host rolls exactly the services
//! that read the file, the values appear nowhere else, and `berth secrets edit` / `rekey`
//! write files `age -d` reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::agent::{http, Repo};
use crate::ops::Sink;
use crate::support::{docker_stdout, images, inspect, wait_until, Project};
use crate::{berth, TempDir};

const ENV_V1: &str = "planted-env-7c1d9e";
const ENV_V2: &str = "planted-env-rotated-55e0";
const FILE_V: &str = "planted-file-4b2a8f";
const HOST_V1: &str = "planted-host-91aa";
const HOST_V2: &str = "planted-host-rotated-3f7b";
const HOST_V3: &str = "planted-host-again-c04d";
const OTHER: &str = "planted-other-host-d1e5";

/// `age-keygen -o DIR/NAME`; its recipient.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen runs (Debian package age)");
    assert!(out.status.success(), "{out:?}");
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&path)
        .output()
        .unwrap();
    (
        path,
        String::from_utf8(public.stdout).unwrap().trim().to_string(),
    )
}

/// `age [-a] -r RECIPIENT -o OUT` of `plain`.
fn age_encrypt(recipient: &str, plain: &str, armor: bool, out: &Path) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let mut cmd = Command::new("age");
    if armor {
        cmd.arg("-a");
    }
    let mut child = cmd
        .args(["-r", recipient, "-o"])
        .arg(out)
        .stdin(Stdio::piped())
        .spawn()
        .expect("age runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plain.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// `age -d -i IDENTITY FILE`.
fn age_decrypt(identity: &Path, file: &Path) -> Result<String, String> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn compose(project: &str, app: &str, tool: &str) -> String {
    format!(
        "\
name: {project}
secrets:
  db: {{ file: ./secrets/db.age }}
services:
  api:
    image: {app}
    env_file: [secrets/api.env.age]
    secrets: [db]
    deploy: {{ update_config: {{ monitor: 0s }} }}
  worker:
    image: {tool}
    env_file: [secrets/api.env.age]
    deploy: {{ update_config: {{ monitor: 0s }} }}
  web:
    image: {app}
    env_file: [host.env]
    deploy: {{ update_config: {{ monitor: 0s }} }}
  stranger:
    image: {tool}
    env_file: [secrets/other.env.age]
    deploy: {{ update_config: {{ monitor: 0s }} }}
"
    )
}

/// The names of the containers of `service`.
fn containers(p: &Project, service: &str) -> Vec<String> {
    let out = docker_stdout([
        "ps",
        "-a",
        "--filter",
        &format!("label={}", p.label()),
        "--filter",
        &format!("label=berth.service={service}"),
        "--format",
        "{{.Names}}",
    ]);
    out.lines().map(str::to_string).collect()
}

/// `docker exec NAME sh -c CMD` of the only container of `service`, or `None`.
fn exec(p: &Project, service: &str, cmd: &str) -> Option<String> {
    let names = containers(p, service);
    let [name] = names.as_slice() else {
        return None;
    };
    let out = Command::new("docker")
        .args(["exec", name, "sh", "-c", cmd])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn id_of(p: &Project, service: &str) -> String {
    let names = containers(p, service);
    inspect(&names[0]).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every file below `dir`, read as bytes, for a search.
fn all_bytes(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            all_bytes(&e.path(), out);
        } else if kind.is_file() {
            out.push((e.path(), std::fs::read(e.path()).unwrap_or_default()));
        }
    }
}

#[test]
fn age_files_decrypt_on_the_host_reach_only_the_container_and_rotations_roll_their_users() {
    let p = Project::new("secrets");
    let img = images();
    let keys = TempDir::default();
    let (host_key, host) = keygen(keys.path(), "host.key");
    let (_, other) = keygen(keys.path(), "other.key");
    let env = TempDir::default();
    std::fs::write(
        env.path().join("host.env"),
        format!("HOST_TOKEN={HOST_V1}\n"),
    )
    .unwrap();
    let shm = tempfile::tempdir_in("/dev/shm").expect("a tmpfs at /dev/shm");
    let runtime = shm.path().join("run");

    let repo = Repo::new();
    let r = repo.path();
    std::fs::create_dir_all(r.join(".berth")).unwrap();
    std::fs::write(r.join(".berth/recipients"), format!("# host\n{host}\n")).unwrap();
    age_encrypt(
        &host,
        &format!("DB_PASSWORD={ENV_V1}\n"),
        true,
        &r.join("secrets/api.env.age"),
    );
    age_encrypt(&host, FILE_V, false, &r.join("secrets/db.age"));
    age_encrypt(
        &other,
        &format!("TOKEN={OTHER}\n"),
        true,
        &r.join("secrets/other.env.age"),
    );
    std::fs::write(
        r.join("compose.yaml"),
        compose(p.name(), &img.app_v1, &img.tool_v1),
    )
    .unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "stack with encrypted secrets"]);

    let sink = Sink::start(0);
    let state = TempDir::default();
    let agent = repo.agent(
        state.path(),
        &[
            "--path",
            "compose.yaml",
            "--age-identity",
            &host_key.display().to_string(),
            "--env-dir",
            &env.path().display().to_string(),
            "--runtime-dir",
            &runtime.display().to_string(),
            "--max-attempts",
            "1",
            "--notify-url",
            &format!("http://127.0.0.1:{}/hook", sink.port),
        ],
    );
    let up = || {
        exec(&p, "api", "echo \"$DB_PASSWORD\"").as_deref() == Some(ENV_V1)
            && exec(&p, "worker", "echo \"$DB_PASSWORD\"").as_deref() == Some(ENV_V1)
            && exec(&p, "web", "echo \"$HOST_TOKEN\"").as_deref() == Some(HOST_V1)
            && ["failed", "held"]
                .iter()
                .any(|o| agent.status()["services"]["stranger"]["last_outcome"] == *o)
    };
    assert!(
        wait_until(Duration::from_secs(40), Duration::from_millis(200), up),
        "{:?} {:?} {}\n{}",
        exec(&p, "api", "echo \"$DB_PASSWORD\""),
        containers(&p, "api"),
        agent.status(),
        agent.log()
    );
    // The secret file: mounted read-only from the tmpfs, mode 0400.
    assert_eq!(
        exec(&p, "api", "cat /run/secrets/db").as_deref(),
        Some(FILE_V)
    );
    let api = inspect(&containers(&p, "api")[0]).unwrap();
    let mount = api["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/run/secrets/db")
        .unwrap()
        .clone();
    assert_eq!(mount["RW"], false);
    let source = PathBuf::from(mount["Source"].as_str().unwrap());
    assert!(source.starts_with(&runtime), "{source:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        source.metadata().unwrap().permissions().mode() & 0o777,
        0o400
    );
    // A file for another host: the service fails, with the file and this host's
    // recipient named, and nothing of it starts.
    assert!(containers(&p, "stranger").is_empty());
    let said = format!(
        "env_file secrets/other.env.age is not encrypted to this host (its recipient: {host})"
    );
    assert!(agent.log().contains(&said), "{}", agent.log());

    // A rotation committed: api and worker roll, web does not.
    let web_before = id_of(&p, "web");
    age_encrypt(
        &host,
        &format!("DB_PASSWORD={ENV_V2}\n"),
        true,
        &r.join("secrets/api.env.age"),
    );
    repo.git(&["commit", "-q", "-am", "rotate the database password"]);
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            exec(&p, "api", "echo \"$DB_PASSWORD\"").as_deref() == Some(ENV_V2)
                && exec(&p, "worker", "echo \"$DB_PASSWORD\"").as_deref() == Some(ENV_V2)
        }),
        "{}",
        agent.log()
    );
    assert_eq!(id_of(&p, "web"), web_before);
    let deployed = |service: &str, reason: &str| {
        sink.events().iter().any(|e| {
            e["kind"] == "deployed" && e["service"] == service && e.to_string().contains(reason)
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            deployed("api", "env_file secrets/api.env.age changed")
                && deployed("worker", "env_file secrets/api.env.age changed")
        }),
        "{:?}",
        sink.events()
    );

    // A host-side edit of the env directory: web rolls, api and worker do not.
    let (api_before, worker_before) = (id_of(&p, "api"), id_of(&p, "worker"));
    std::fs::write(
        env.path().join("host.env"),
        format!("HOST_TOKEN={HOST_V2}\n"),
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            exec(&p, "web", "echo \"$HOST_TOKEN\"").as_deref() == Some(HOST_V2)
        }),
        "{}",
        agent.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            deployed("web", "env_file host.env changed")
        }),
        "{:?}",
        sink.events()
    );
    assert_eq!(
        (id_of(&p, "api"), id_of(&p, "worker")),
        (api_before, worker_before)
    );

    // Every channel searched for every value.
    let listen = format!("127.0.0.1:{}", agent.port);
    let sd = state.path().display().to_string();
    let (_, metrics) = http(agent.port, "GET", "/metrics", &[], b"").unwrap();
    let mut outputs = vec![
        ("log".to_string(), agent.log()),
        ("metrics".into(), metrics),
        ("status".into(), agent.status().to_string()),
        ("notifications".into(), format!("{:?}", sink.events())),
    ];
    for args in [
        vec!["status", "--listen", listen.as_str(), "--output", "json"],
        vec!["history", "--state-dir", sd.as_str(), "--output", "json"],
    ] {
        let run = berth(&args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        outputs.push((format!("{args:?}"), run.stdout + &run.stderr));
    }
    drop(agent);
    // `berth plan` sees a host-side edit before any agent acts, naming only the file.
    std::fs::write(
        env.path().join("host.env"),
        format!("HOST_TOKEN={HOST_V3}\n"),
    )
    .unwrap();
    let plan = berth([
        "plan",
        "--file",
        &r.join("compose.yaml").display().to_string(),
        "--age-identity",
        &host_key.display().to_string(),
        "--env-dir",
        &env.path().display().to_string(),
    ]);
    assert_eq!(plan.code, 3, "{plan:?}");
    let line = |service: &str| {
        let found = plan.stdout.lines().find(|l| {
            l.get(2..)
                .is_some_and(|l| l.starts_with(&format!("{service} ")))
        });
        found.map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        line("web").as_deref(),
        Some("~ web replace env_file host.env changed"),
        "{}",
        plan.stdout
    );
    assert_eq!(
        line("api").as_deref(),
        Some("= api in sync 1/1 replicas"),
        "{}",
        plan.stdout
    );
    assert!(plan.stderr.contains(&said), "{}", plan.stderr);
    outputs.push(("plan".into(), plan.stdout + &plan.stderr));
    // Docker: labels of everything, and every container's inspect but its env.
    for name in p.containers() {
        let mut c = inspect(&name).unwrap();
        c["Config"]["Env"] = serde_json::Value::Null;
        outputs.push((format!("inspect {name}"), c.to_string()));
    }
    for kind in ["network", "volume"] {
        let names = docker_stdout([
            kind,
            "ls",
            "-q",
            "--filter",
            &format!("label={}", p.label()),
        ]);
        for n in names.lines() {
            outputs.push((format!("{kind} {n}"), docker_stdout([kind, "inspect", n])));
        }
    }
    let mut files = Vec::new();
    all_bytes(state.path(), &mut files);
    for (path, bytes) in files {
        outputs.push((
            path.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (what, text) in &outputs {
        for value in [ENV_V1, ENV_V2, FILE_V, HOST_V1, HOST_V2, HOST_V3, OTHER] {
            assert!(!text.contains(value), "{value} in {what}:\n{text}");
        }
    }
}

#[test]
fn secrets_edit_and_rekey_write_files_the_age_tool_reads_and_show_the_recipients() {
    let dir = TempDir::default();
    let repo = dir.path();
    let (person_key, person) = keygen(repo, "person.key");
    let (host_key, host) = keygen(repo, "host.key");
    std::fs::create_dir_all(repo.join(".berth")).unwrap();
    std::fs::write(
        repo.join(".berth/recipients"),
        format!("# ops laptop\n{person}\n"),
    )
    .unwrap();
    // What `berth secrets recipients` prints is the host's line for that file.
    let printed = berth([
        "secrets",
        "recipients",
        "--age-identity",
        &host_key.display().to_string(),
    ]);
    assert_eq!(printed.code, 0, "{printed:?}");
    assert_eq!(printed.stdout.lines().nth(1), Some(host.as_str()));
    assert!(printed.stdout.starts_with("# "));

    // An editor that writes the new content over the file it is given.
    let editor = repo.join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nprintf 'DB_PASSWORD=edited-planted\\n' > \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = repo.join("secrets/api.env.age");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let edit = |file: &Path, key: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["secrets", "edit"])
            .arg(file)
            .arg("--age-identity")
            .arg(key)
            .env("EDITOR", &editor)
            .env_remove("VISUAL")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = edit(&file, &person_key);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("encrypting to 1 recipient(s) of .berth/recipients:"),
        "{stderr}"
    );
    assert!(stderr.contains("ops laptop"), "{stderr}");
    assert!(!stderr.contains("edited-planted"), "{stderr}");
    assert_eq!(
        age_decrypt(&person_key, &file).unwrap(),
        "DB_PASSWORD=edited-planted\n"
    );
    assert!(age_decrypt(&host_key, &file).is_err());
    // A file made by the age tool, binary, beside it.
    let binary = repo.join("secrets/db.age");
    age_encrypt(&person, "file-planted", false, &binary);

    // The host joins: listed, then rekeyed; both files now open for it, each in its form.
    std::fs::write(
        repo.join(".berth/recipients"),
        format!("# ops laptop\n{person}\n# web-1\n{host}\n"),
    )
    .unwrap();
    let rekey = berth([
        "secrets",
        "rekey",
        &repo.display().to_string(),
        "--age-identity",
        &person_key.display().to_string(),
    ]);
    assert_eq!(rekey.code, 0, "{rekey:?}");
    assert!(
        rekey.stderr.contains("encrypting to 2 recipient(s)"),
        "{}",
        rekey.stderr
    );
    assert!(rekey.stderr.contains("web-1"), "{}", rekey.stderr);
    assert!(
        rekey.stderr.contains("2 of 2 file(s) rekeyed"),
        "{}",
        rekey.stderr
    );
    assert_eq!(
        age_decrypt(&host_key, &file).unwrap(),
        "DB_PASSWORD=edited-planted\n"
    );
    assert_eq!(age_decrypt(&host_key, &binary).unwrap(), "file-planted");
    assert_eq!(age_decrypt(&person_key, &binary).unwrap(), "file-planted");
    assert!(std::fs::read(&file)
        .unwrap()
        .starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(std::fs::read(&binary)
        .unwrap()
        .starts_with(b"age-encryption.org/v1\n"));

    // An ssh-ed25519 key works as an identity too, both ways with the age tool.
    let ssh = repo.join("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&ssh)
        .status()
        .expect("ssh-keygen runs");
    assert!(made.success());
    let public = std::fs::read_to_string(ssh.with_extension("pub")).unwrap();
    let by_ssh = berth([
        "secrets",
        "recipients",
        "--age-identity",
        &ssh.display().to_string(),
    ]);
    assert_eq!(by_ssh.code, 0, "{by_ssh:?}");
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    assert_eq!(by_ssh.stdout.lines().nth(1), Some(key.join(" ").as_str()));
    let ssh_file = repo.join("secrets/ssh.age");
    age_encrypt(&key.join(" "), "ssh-planted", true, &ssh_file);
    std::fs::write(
        repo.join(".berth/recipients"),
        format!("# ssh host\n{}\n", key.join(" ")),
    )
    .unwrap();
    let (code, stderr) = edit(&ssh_file, &ssh);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("ssh host"), "{stderr}");
    assert_eq!(
        age_decrypt(&ssh, &ssh_file).unwrap(),
        "DB_PASSWORD=edited-planted\n"
    );
    // An identity that opens nothing: refused, the file left as it was.
    let before = std::fs::read(&ssh_file).unwrap();
    let wrong = berth([
        "secrets",
        "rekey",
        &repo.display().to_string(),
        "--age-identity",
        &host_key.display().to_string(),
    ]);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(
        wrong
            .stderr
            .contains("secrets/ssh.age is not encrypted to this host"),
        "{}",
        wrong.stderr
    );
    assert_eq!(std::fs::read(&ssh_file).unwrap(), before);
}
