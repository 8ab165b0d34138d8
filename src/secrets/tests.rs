//! Decrypting fails closed, says which file and which recipient, and never quotes a
//! byte of content; recipients files parse as `age -R` reads them; decrypted files land
//! only on a tmpfs, mode 0400.

use std::path::PathBuf;

use super::recipients;
use super::runtime;
use super::*;

/// A fresh X25519 identity written as `age-keygen` writes it, loaded.
pub(crate) fn host_keys(dir: &std::path::Path, name: &str) -> (HostKeys, PathBuf) {
    let id = age::x25519::Identity::generate();
    let path = dir.join(name);
    {
        use age::secrecy::ExposeSecret;
        let text = format!(
            "# created: 2026-11-30T00:00:00Z\n# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        );
        std::fs::write(&path, text).unwrap();
    }
    (HostKeys::load(std::slice::from_ref(&path)).unwrap(), path)
}

/// `plain` encrypted to `keys`' recipients (armored or binary).
pub(crate) fn seal(keys: &HostKeys, plain: &[u8], armor: bool) -> Vec<u8> {
    let text: String = keys.recipients().iter().map(|r| format!("{r}\n")).collect();
    let list = recipients::parse(&text, "recipients").unwrap();
    recipients::encrypt(&list, plain, armor).unwrap()
}

#[test]
fn binary_and_armored_files_decrypt_with_the_hosts_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = host_keys(dir.path(), "host.key");
    assert_eq!(keys.recipients().len(), 1);
    assert!(keys.recipients()[0].starts_with("age1"));
    for armor in [false, true] {
        let sealed = seal(&keys, b"DB_PASSWORD=hunter2-planted\n", armor);
        assert_eq!(recipients::is_armored(&sealed), armor);
        let plain = keys.decrypt("env_file api.env.age", &sealed).unwrap();
        assert_eq!(plain, b"DB_PASSWORD=hunter2-planted\n");
    }
}

#[test]
fn a_file_for_another_host_fails_naming_the_file_and_this_hosts_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, _) = host_keys(dir.path(), "ours.key");
    let (theirs, _) = host_keys(dir.path(), "theirs.key");
    let sealed = seal(&theirs, b"TOKEN=only-for-them-planted\n", true);
    let err = ours
        .decrypt("env_file secrets/api.env.age", &sealed)
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "env_file secrets/api.env.age is not encrypted to this host (its recipient: {}); add that line to .berth/recipients and run `berth secrets rekey`",
            ours.recipients()[0]
        )
    );
}

#[test]
fn corrupted_truncated_oversized_and_identity_less_files_fail_closed_without_content() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = host_keys(dir.path(), "host.key");
    let plain = b"API_KEY=do-not-print-me-planted\n".repeat(200);
    let sealed = seal(&keys, &plain, false);
    // A flipped byte in the payload: the MAC fails.
    let mut flipped = sealed.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x40;
    // Cut in the middle of the payload.
    let truncated = &sealed[..sealed.len() - 100];
    // Not an age file at all.
    let garbage = b"API_KEY=plaintext-committed-planted\n".to_vec();
    for (what, data) in [
        ("flipped", flipped.as_slice()),
        ("truncated", truncated),
        ("garbage", garbage.as_slice()),
    ] {
        let err = keys.decrypt("secret db.age", data).unwrap_err();
        assert!(err.starts_with("secret db.age "), "{what}: {err}");
        assert!(!err.contains("planted"), "{what}: {err}");
    }
    let huge = vec![b'a'; MAX_SEALED_BYTES + 1];
    assert_eq!(
        keys.decrypt("secret big.age", &huge).unwrap_err(),
        "secret big.age is larger than 1024 KiB; encrypted files hold settings and keys, not data"
    );
    let none = HostKeys::default();
    assert_eq!(
        none.decrypt("env_file a.env.age", &sealed).unwrap_err(),
        "env_file a.env.age is encrypted (age) and this host has no identity to decrypt it; start berth with --age-identity FILE (BERTH_AGE_IDENTITY)"
    );
}

#[test]
fn a_bad_identity_file_is_an_error_that_never_quotes_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.key");
    std::fs::write(&path, "# comment\nAGE-SECRET-KEY-1NOTAKEYPLANTED\n").unwrap();
    let err = HostKeys::load(std::slice::from_ref(&path)).unwrap_err();
    assert!(err.contains("line 2 is not an age identity"), "{err}");
    assert!(!err.contains("PLANTED"), "{err}");
    std::fs::write(&path, "# nothing\n").unwrap();
    assert!(HostKeys::load(&[path])
        .unwrap_err()
        .contains("holds no identity"));
}

#[test]
fn recipients_files_take_comments_above_or_after_a_key_and_name_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = host_keys(dir.path(), "a.key");
    let (b, _) = host_keys(dir.path(), "b.key");
    let text = format!(
        "# hosts of shop\n\n# web-1\n{}\n{} ops laptop\n",
        a.recipients()[0],
        b.recipients()[0]
    );
    let list = recipients::parse(&text, ".berth/recipients").unwrap();
    let seen: Vec<(usize, &str)> = list.iter().map(|r| (r.line, r.comment.as_str())).collect();
    assert_eq!(seen, [(4, "web-1"), (5, "ops laptop")]);
    let shown = recipients::describe(&list);
    assert!(shown.starts_with("encrypting to 2 recipient(s) of .berth/recipients:\n"));
    assert!(
        shown.contains("web-1") && shown.contains("ops laptop"),
        "{shown}"
    );
    // Both can read what is encrypted to the list.
    let sealed = recipients::encrypt(&list, b"x", true).unwrap();
    assert_eq!(a.decrypt("f", &sealed).unwrap(), b"x");
    assert_eq!(b.decrypt("f", &sealed).unwrap(), b"x");

    let err = recipients::parse("# x\nage1nope\n", ".berth/recipients").unwrap_err();
    assert!(
        err.starts_with(".berth/recipients:2: `age1nope` is not an age recipient"),
        "{err}"
    );
    assert!(recipients::parse("# only comments\n", "r")
        .unwrap_err()
        .contains("lists no recipient"));
}

/// The secret `db` of service `api` in `shop`, owned by root.
fn db(plain: &[u8]) -> runtime::Decrypted<'_> {
    runtime::Decrypted {
        project: "shop",
        service: "api",
        name: "db",
        plain,
        owner: None,
    }
}

#[test]
fn decrypted_files_go_only_to_a_tmpfs_mode_0400_and_unused_ones_are_pruned() {
    use std::os::unix::fs::PermissionsExt;
    // Not a tmpfs (the target dir's disk): refused, nothing written.
    let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    if !runtime::on_tmpfs(disk.path()) {
        let err = db(b"pw-planted").write_in(disk.path()).unwrap_err();
        assert!(
            err.starts_with("secret `db`: the runtime directory"),
            "{err}"
        );
        assert!(err.contains("is not a tmpfs"), "{err}");
        assert!(!runtime::project_dir(disk.path(), "shop").exists());
    }
    let shm = tempfile::tempdir_in("/dev/shm").expect("/dev/shm is a tmpfs here");
    let run = shm.path().join("berth");
    let p = db(b"pw-planted").write_in(&run).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"pw-planted");
    assert_eq!(p.metadata().unwrap().permissions().mode() & 0o777, 0o400);
    let dir_mode = p.parent().unwrap().metadata().unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    // Same content: the same file; another: another file.
    let again = db(b"pw-planted").write_in(&run).unwrap();
    assert_eq!(again, p);
    let rotated = db(b"pw2-planted").write_in(&run).unwrap();
    assert_ne!(rotated, p);
    runtime::prune(&run, "shop", std::slice::from_ref(&rotated));
    assert!(!p.exists() && rotated.exists());
}

#[test]
fn an_age_file_written_here_is_read_by_the_age_tool_format_rules() {
    // The armored form is age's: a PEM-like block of 64-column base64.
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = host_keys(dir.path(), "k");
    let sealed = seal(&keys, b"A=1\n", true);
    let text = String::from_utf8(sealed).unwrap();
    assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
    assert!(text
        .trim_end()
        .ends_with("-----END AGE ENCRYPTED FILE-----"));
    assert!(text.lines().all(|l| l.len() <= 64));
}
