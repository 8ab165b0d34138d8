use std::path::PathBuf;
use std::process::Command;

use super::allowed_signers::{match_pattern_list, parse_time};
use super::*;

/// The committer time of every commit the tests make: 2024-06-01 12:00:00 UTC.
const COMMIT_TIME: i64 = 1_717_243_200;

/// A scratch git repository plus keys, isolated from the user's git config.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let fixture = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        fixture.git(&["init", "-q", "-b", "main", "repo"], ".");
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn repo(&self) -> git2::Repository {
        git2::Repository::open(self.path("repo")).unwrap()
    }

    /// Runs a command with no access to the user's home or git config.
    fn run(&self, command: &mut Command) -> String {
        let output = command
            .env("HOME", self.dir.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", format!("@{COMMIT_TIME} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{COMMIT_TIME} +0000"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn git(&self, args: &[&str], cwd: &str) -> String {
        self.run(
            Command::new("git")
                .current_dir(self.dir.path().join(cwd))
                .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
                .args(args),
        )
    }

    /// Generates a key pair named `name`; returns its public key line.
    fn keygen(&self, name: &str, kind: &[&str]) -> String {
        let key = self.path(name);
        self.run(
            Command::new("ssh-keygen")
                .args(kind)
                .args(["-N", "", "-q", "-C", name, "-f"])
                .arg(&key),
        );
        std::fs::read_to_string(key.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn ed25519(&self, name: &str) -> String {
        self.keygen(name, &["-t", "ed25519"])
    }

    /// `ssh-keygen -l`'s fingerprint of key `name`.
    fn fingerprint(&self, name: &str) -> String {
        let out = self.run(
            Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(self.path(name).with_extension("pub")),
        );
        out.split_whitespace().nth(1).unwrap().to_owned()
    }

    fn head(&self) -> git2::Oid {
        git2::Oid::from_str(self.git(&["rev-parse", "HEAD"], "repo").trim()).unwrap()
    }

    /// Commits with `git commit -S`, signing with key `name`.
    fn signed_commit(&self, key: &str, message: &str) -> git2::Oid {
        let signing_key = format!("user.signingkey={}", self.path(key).display());
        self.git(
            &[
                "-c",
                "gpg.format=ssh",
                "-c",
                &signing_key,
                "commit",
                "-q",
                "--allow-empty",
                "-S",
                "-m",
                message,
            ],
            "repo",
        );
        self.head()
    }

    fn unsigned_commit(&self, message: &str) -> git2::Oid {
        self.git(
            &[
                "commit",
                "-q",
                "--allow-empty",
                "--no-gpg-sign",
                "-m",
                message,
            ],
            "repo",
        );
        self.head()
    }

    /// Signs `data` with `ssh-keygen -Y sign` in `namespace`; returns the armored signature.
    fn sign(&self, key: &str, namespace: &str, data: &[u8]) -> String {
        let file = self.path("payload");
        std::fs::write(&file, data).unwrap();
        let _ = std::fs::remove_file(file.with_extension("sig"));
        self.run(
            Command::new("ssh-keygen")
                .args(["-Y", "sign", "-n", namespace, "-q", "-f"])
                .arg(self.path(key))
                .arg(&file),
        );
        std::fs::read_to_string(self.path("payload.sig")).unwrap()
    }
}

fn allowed(text: &str) -> AllowedSigners {
    AllowedSigners::parse(text, "allowed_signers").unwrap()
}

fn parse_error(text: &str) -> String {
    AllowedSigners::parse(text, "allowed_signers").unwrap_err()
}

/// Writes `payload` as a commit object carrying `signature`, as git would.
fn commit_with_signature(repo: &git2::Repository, payload: &str, signature: &str) -> git2::Oid {
    repo.commit_signed(payload, signature, None).unwrap()
}

#[test]
fn commit_signed_by_allowed_key_is_valid() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let signers = allowed(&format!("alice@example.com {alice}\n"));
    let oid = fx.signed_commit("alice", "deploy web");

    let check = verify_commit(&fx.repo(), oid, &signers);
    let fingerprint = fx.fingerprint("alice");
    assert_eq!(
        check,
        SignatureCheck::Valid {
            principal: "alice@example.com".into(),
            fingerprint: fingerprint.clone(),
        }
    );
    assert!(check.is_valid());
    assert_eq!(
        check.to_string(),
        format!("signed by alice@example.com ({fingerprint})")
    );
}

#[test]
fn unsigned_commit_is_unsigned() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let oid = fx.unsigned_commit("no signature");

    let check = verify_commit(&fx.repo(), oid, &allowed(&format!("alice {alice}")));
    assert_eq!(check, SignatureCheck::Unsigned);
    assert!(!check.is_valid());
    assert_eq!(check.to_string(), "unsigned");
}

#[test]
fn missing_commit_is_invalid_not_unsigned() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    fx.unsigned_commit("root");
    let missing = git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();

    let check = verify_commit(&fx.repo(), missing, &allowed(&format!("alice {alice}")));
    assert!(
        matches!(check, SignatureCheck::Invalid(ref why) if why.contains("cannot read commit"))
    );
}

#[test]
fn commit_signed_by_key_not_listed_is_unknown_key() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    fx.ed25519("mallory");
    let oid = fx.signed_commit("mallory", "sneaky");

    let check = verify_commit(&fx.repo(), oid, &allowed(&format!("alice {alice}")));
    let fingerprint = fx.fingerprint("mallory");
    assert_eq!(
        check,
        SignatureCheck::UnknownKey {
            fingerprint: fingerprint.clone()
        }
    );
    assert!(check.to_string().starts_with(&format!(
        "signed by a key not in the allowed signers ({fingerprint})"
    )));
}

#[test]
fn empty_allowed_signers_accept_nothing() {
    let fx = Fixture::new();
    fx.ed25519("alice");
    let oid = fx.signed_commit("alice", "deploy");
    let signers = allowed("# nobody yet\n\n");
    assert!(signers.is_empty());
    assert!(matches!(
        verify_commit(&fx.repo(), oid, &signers),
        SignatureCheck::UnknownKey { .. }
    ));
}

/// A signature by an allowed key, but made for namespace "file", is
/// `Invalid` (not `UnknownKey`): it is not a commit signature at all, and
/// accepting it would let any file signed by a trusted key pass as a commit.
#[test]
fn signature_for_another_namespace_is_invalid() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let repo = fx.repo();
    let unsigned = fx.unsigned_commit("signed as a file");
    let payload = repo.odb().unwrap().read(unsigned).unwrap().data().to_vec();
    let signature = fx.sign("alice", "file", &payload);
    let oid = commit_with_signature(&repo, std::str::from_utf8(&payload).unwrap(), &signature);

    let check = verify_commit(&repo, oid, &allowed(&format!("alice {alice}")));
    match &check {
        SignatureCheck::Invalid(why) => assert!(why.contains("namespace \"file\""), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(check
        .to_string()
        .starts_with("bad signature: made by SHA256:"));

    // The same payload signed in namespace git is accepted, so the
    // rejection above is down to the namespace alone.
    let signature = fx.sign("alice", "git", &payload);
    let oid = commit_with_signature(&repo, std::str::from_utf8(&payload).unwrap(), &signature);
    assert!(verify_commit(&repo, oid, &allowed(&format!("alice {alice}"))).is_valid());
}

#[test]
fn tampered_commit_is_invalid() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let signers = allowed(&format!("alice {alice}"));
    let repo = fx.repo();
    let original = fx.signed_commit("alice", "image: web:1.0");
    let (signature, payload) = repo.extract_signature(&original, None).unwrap();
    let (signature, payload) = (signature.as_str().unwrap(), payload.as_str().unwrap());

    // Rewriting the untouched payload reproduces the very same commit.
    assert_eq!(commit_with_signature(&repo, payload, signature), original);

    let tampered = payload.replace("web:1.0", "web:6.6");
    assert_ne!(tampered, payload);
    let oid = commit_with_signature(&repo, &tampered, signature);
    match verify_commit(&repo, oid, &signers) {
        SignatureCheck::Invalid(why) => {
            assert!(why.contains("does not verify"), "{why}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn gpg_signature_is_invalid() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let repo = fx.repo();
    let unsigned = fx.unsigned_commit("gpg signed");
    let payload = repo.odb().unwrap().read(unsigned).unwrap().data().to_vec();
    let gpg =
        "-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n";
    let oid = commit_with_signature(&repo, std::str::from_utf8(&payload).unwrap(), gpg);

    match verify_commit(&repo, oid, &allowed(&format!("alice {alice}"))) {
        SignatureCheck::Invalid(why) => assert!(why.contains("GPG"), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn malformed_ssh_signature_is_invalid() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let repo = fx.repo();
    let unsigned = fx.unsigned_commit("garbage");
    let payload = repo.odb().unwrap().read(unsigned).unwrap().data().to_vec();
    let garbage = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n";
    let oid = commit_with_signature(&repo, std::str::from_utf8(&payload).unwrap(), garbage);

    match verify_commit(&repo, oid, &allowed(&format!("alice {alice}"))) {
        SignatureCheck::Invalid(why) => assert!(why.contains("malformed"), "{why}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn namespaces_option_restricts_the_key() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let oid = fx.signed_commit("alice", "deploy");
    let repo = fx.repo();
    let check = |line: &str| verify_commit(&repo, oid, &allowed(line));

    assert!(matches!(
        check(&format!("alice namespaces=\"file\" {alice}")),
        SignatureCheck::UnknownKey { .. }
    ));
    assert!(matches!(
        check(&format!("alice namespaces=\"*,!git\" {alice}")),
        SignatureCheck::UnknownKey { .. }
    ));
    assert!(check(&format!("alice namespaces=\"file,git\" {alice}")).is_valid());
    assert!(check(&format!("alice NAMESPACES=\"g?t\" {alice}")).is_valid());
    assert!(check(&format!("alice namespaces=\"*\" {alice}")).is_valid());
}

/// Every line is a grant of its own, so the restricted first line does
/// not hide the second (git would reject this commit; see the module doc).
#[test]
fn first_line_allowing_the_key_names_the_signer() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let oid = fx.signed_commit("alice", "deploy");
    let text = format!(
        "files-only namespaces=\"file\" {alice}\n\
         \"alice smith,alice@corp\" {alice}\n\
         later {alice}\n"
    );
    match verify_commit(&fx.repo(), oid, &allowed(&text)) {
        SignatureCheck::Valid { principal, .. } => {
            assert_eq!(principal, "alice smith")
        }
        other => panic!("expected Valid, got {other:?}"),
    }
}

#[test]
fn validity_period_is_checked_against_committer_time() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let oid = fx.signed_commit("alice", "deploy");
    let repo = fx.repo();
    assert_eq!(
        repo.find_commit(oid).unwrap().committer().when().seconds(),
        COMMIT_TIME
    );
    let check =
        |options: &str| verify_commit(&repo, oid, &allowed(&format!("alice {options} {alice}")));

    assert!(check("valid-after=\"20240601\"").is_valid());
    assert!(check("valid-after=\"20240601120000Z\"").is_valid());
    assert!(!check("valid-after=\"20240601120001\"").is_valid());
    assert!(!check("valid-after=\"20240602\"").is_valid());
    assert!(check("valid-before=\"202406011200\"").is_valid());
    assert!(!check("valid-before=\"20240601115959UTC\"").is_valid());
    assert!(check("valid-after=\"20240101\",valid-before=\"20250101\"").is_valid());
    assert!(matches!(
        check("valid-after=\"20230101\",valid-before=\"20240101\""),
        SignatureCheck::UnknownKey { .. }
    ));
}

#[test]
fn ecdsa_and_rsa_signatures_verify() {
    let fx = Fixture::new();
    let ecdsa = fx.keygen("ecdsa", &["-t", "ecdsa", "-b", "256"]);
    let rsa = fx.keygen("rsa", &["-t", "rsa", "-b", "2048"]);
    let signers = allowed(&format!("ops-ecdsa {ecdsa}\nops-rsa {rsa}\n"));
    let repo = fx.repo();

    let oid = fx.signed_commit("ecdsa", "ecdsa");
    assert_eq!(
        verify_commit(&repo, oid, &signers),
        SignatureCheck::Valid {
            principal: "ops-ecdsa".into(),
            fingerprint: fx.fingerprint("ecdsa"),
        }
    );
    let oid = fx.signed_commit("rsa", "rsa");
    assert_eq!(
        verify_commit(&repo, oid, &signers),
        SignatureCheck::Valid {
            principal: "ops-rsa".into(),
            fingerprint: fx.fingerprint("rsa"),
        }
    );
}

#[test]
fn unsupported_key_type_is_invalid_not_tampered() {
    let fx = Fixture::new();
    let p384 = fx.keygen("p384", &["-t", "ecdsa", "-b", "384"]);
    let oid = fx.signed_commit("p384", "p384");

    match verify_commit(&fx.repo(), oid, &allowed(&format!("ops {p384}"))) {
        SignatureCheck::Invalid(why) => {
            assert!(why.contains("ecdsa-sha2-nistp384 key"), "{why}");
            assert!(why.contains("berth cannot check"), "{why}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn display_is_one_line_per_outcome() {
    let outcomes = [
        SignatureCheck::Valid {
            principal: "alice".into(),
            fingerprint: "SHA256:abc".into(),
        },
        SignatureCheck::Unsigned,
        SignatureCheck::UnknownKey {
            fingerprint: "SHA256:abc".into(),
        },
        SignatureCheck::Invalid("why".into()),
    ];
    let shown: Vec<String> = outcomes.iter().map(ToString::to_string).collect();
    assert_eq!(shown[0], "signed by alice (SHA256:abc)");
    assert_eq!(shown[1], "unsigned");
    assert!(shown[2].starts_with("signed by a key not in the allowed signers (SHA256:abc)"));
    assert_eq!(shown[3], "bad signature: why");
    assert!(shown.iter().all(|line| !line.contains('\n')));
}

mod allowed_signers_file;
