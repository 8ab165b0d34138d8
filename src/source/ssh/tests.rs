//! The ssh remote's URL, patterns, the identity chosen and what is said of it.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::auth::{key_is_encrypted, read_passphrase, SshIdentity};
use super::pattern::{match_list, matches, ListMatch};
use super::remote::{parse, SshRemote};

#[test]
fn ssh_urls_give_their_host_and_port() {
    let r = |user: Option<&str>, host: &str, port| {
        Some(SshRemote {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        })
    };
    assert_eq!(
        parse("ssh://git@github.com/o/r.git"),
        r(Some("git"), "github.com", 22)
    );
    assert_eq!(
        parse("ssh://me@127.0.0.1:2222/srv/r"),
        r(Some("me"), "127.0.0.1", 2222)
    );
    assert_eq!(parse("ssh://[::1]:2200/r"), r(None, "::1", 2200));
    assert_eq!(parse("git+ssh://h:/r"), r(None, "h", 22));
    assert_eq!(
        parse("git@gitlab.com:o/r.git"),
        r(Some("git"), "gitlab.com", 22)
    );
    assert_eq!(parse("gitea.lan:r.git"), r(None, "gitea.lan", 22));
    assert_eq!(parse("https://github.com/o/r"), None);
    assert_eq!(parse("/srv/repo"), None);
    assert_eq!(parse("./dir/with:colon"), None);
    assert_eq!(parse("ssh://h:notaport/r"), None);
}

#[test]
fn patterns_match_as_openssh_does() {
    assert!(matches("git.example.com", "*.example.com"));
    assert!(matches("git.example.com", "*"));
    assert!(matches("a", "?"));
    assert!(!matches("ab", "?"));
    assert!(matches("[10.0.0.1]:2222", "[10.0.0.?]:*"));
    assert!(matches("GIT.example.COM", "git.EXAMPLE.com"));
    assert!(matches("aXbXc", "a*b*c"));
    assert!(!matches("aXbX", "a*b*c"));
    assert!(!matches("example.com", "*.example.com"));
    assert_eq!(match_list("h", "x,h"), ListMatch::Yes);
    assert_eq!(match_list("h", "x,y"), ListMatch::None);
    assert_eq!(match_list("h", "*,!h"), ListMatch::Negated);
    assert_eq!(match_list("h", "!h,*"), ListMatch::Negated);
    assert_eq!(match_list("h", "!x"), ListMatch::None);
}

fn secret_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(format!("pass-{mode:o}"));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn a_key_file_wins_over_the_agent_and_the_agent_over_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pass = secret_file(dir.path(), "correct horse\nignored\n", 0o600);
    let key = Path::new("/keys/deploy");
    let chosen = SshIdentity::choose(Some(key), Some(&pass), Some("/run/agent.sock")).unwrap();
    assert_eq!(
        chosen,
        SshIdentity::KeyFile {
            key: key.to_path_buf(),
            passphrase: Some("correct horse".into()),
            passphrase_file: Some(pass.clone()),
        }
    );
    // The passphrase never shows in what is printed of the identity.
    let shown = format!("{chosen:?}");
    assert!(!shown.contains("correct horse"), "{shown}");
    assert_eq!(
        SshIdentity::choose(None, None, Some("/run/agent.sock")).unwrap(),
        SshIdentity::Agent {
            socket: "/run/agent.sock".into()
        }
    );
    assert_eq!(
        SshIdentity::choose(None, None, Some("")).unwrap(),
        SshIdentity::None
    );
    assert_eq!(
        SshIdentity::choose(None, None, None).unwrap(),
        SshIdentity::None
    );
    let err = SshIdentity::choose(None, Some(&pass), Some("/run/agent.sock")).unwrap_err();
    assert!(err.contains("--git-ssh-key, which is not given"), "{err}");
}

#[test]
fn a_passphrase_file_must_be_the_owners_alone_and_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let open = secret_file(dir.path(), "s3cret-words\n", 0o644);
    let err = read_passphrase(&open).unwrap_err();
    assert!(err.contains("mode 644"), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", open.display())),
        "{err}"
    );
    assert!(!err.contains("s3cret-words"), "{err}");
    let empty = secret_file(dir.path(), "\n", 0o400);
    assert!(read_passphrase(&empty).unwrap_err().contains("is empty"));
    let missing = read_passphrase(&dir.path().join("nope")).unwrap_err();
    assert!(missing.contains("--git-ssh-passphrase-file"), "{missing}");
}

#[test]
fn encrypted_keys_are_told_from_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let keygen = |name: &str, pass: &str| {
        let path = dir.path().join(name);
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", pass, "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen (openssh-client) is needed");
        assert!(ok.success());
        path
    };
    assert_eq!(key_is_encrypted(&keygen("plain", "")), Some(false));
    assert_eq!(key_is_encrypted(&keygen("locked", "pass")), Some(true));
    assert_eq!(key_is_encrypted(&dir.path().join("missing")), None);
}

#[test]
fn a_wrong_passphrase_is_explained_without_the_passphrase() {
    let identity = SshIdentity::KeyFile {
        key: "/keys/deploy".into(),
        passphrase: Some("hunter2".into()),
        passphrase_file: Some("/etc/berth/pass".into()),
    };
    let said = super::explain(
        &identity,
        "Unable to extract public key from private key file: Wrong passphrase or invalid/unrecognized private key file format",
    )
    .unwrap();
    assert!(said.contains("/keys/deploy"), "{said}");
    assert!(said.contains("/etc/berth/pass"), "{said}");
    assert!(said.contains("passphrase is wrong"), "{said}");
    assert!(!said.contains("hunter2"), "{said}");
    // What libssh2 (OpenSSL) says of an OpenSSH-format key it cannot decrypt.
    let said = super::explain(
        &identity,
        "failed to authenticate SSH session: Unable to extract public key from private key: Unsupported private key format",
    )
    .unwrap();
    assert!(said.contains("passphrase is wrong"), "{said}");
    assert_eq!(super::explain(&identity, "connection refused"), None);
    assert_eq!(super::explain(&SshIdentity::None, "Wrong passphrase"), None);
}
