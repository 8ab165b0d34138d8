//! The known_hosts reader against files and keys written by OpenSSH's ssh-keygen
//! (`testdata/`: host keys, a CA, host certificates, `ssh-keygen -H` output).

use super::*;

const HOST: &str = include_str!("../testdata/host.pub");
const OTHER: &str = include_str!("../testdata/other.pub");
const HOST_EC: &str = include_str!("../testdata/hostec.pub");
const CA: &str = include_str!("../testdata/ca.pub");
const CA2: &str = include_str!("../testdata/ca2.pub");
/// Signed by `ca`, host certificate, principals 127.0.0.1 and git.example.com,
/// valid 2020-01-01 to 2040-01-01.
const CERT: &str = include_str!("../testdata/hostcert.pub");
/// The same key signed by `ca2` for git.example.com.
const CERT_CA2: &str = include_str!("../testdata/hostcert_ca2.pub");
/// A user certificate signed by `ca`.
const USER_CERT: &str = include_str!("../testdata/usercert.pub");
/// A host certificate signed by `ca` for `*.example.com`.
const WILD_CERT: &str = include_str!("../testdata/wildcert.pub");
/// Signed by `ca` for git.example.com without `-V`: valid forever (u64::MAX).
const FOREVER_CERT: &str = include_str!("../testdata/forevercert.pub");
/// `ssh-keygen -H` of `git.example.com` and `[git.example.com]:2222`, both with `host`.
const HASHED: &str = include_str!("../testdata/hashed_known_hosts");

/// 2030-01-01, inside the certificates' window.
const NOW: u64 = 1_893_456_000;

/// The `type base64` part of a .pub file.
fn key(public: &str) -> String {
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn blob(public: &str) -> Vec<u8> {
    STANDARD
        .decode(public.split_whitespace().nth(1).unwrap())
        .unwrap()
}

fn file(text: &str) -> KnownHosts {
    KnownHosts::parse(text, Path::new("/etc/berth/known_hosts")).unwrap()
}

#[test]
fn fingerprints_are_printed_as_ssh_keygen_prints_them() {
    assert_eq!(
        fingerprint(&blob(HOST)),
        include_str!("../testdata/host.fingerprint").trim()
    );
}

#[test]
fn a_plain_name_matches_on_port_22_only() {
    let kh = file(&format!("git.example.com {}\n", key(HOST)));
    assert_eq!(
        kh.check("git.example.com", 22, &blob(HOST), NOW),
        Ok(Accepted::Key { line: 1 })
    );
    assert_eq!(
        kh.check("GIT.Example.com", 22, &blob(HOST), NOW),
        Ok(Accepted::Key { line: 1 })
    );
    // OpenSSH looks a host on another port up as [host]:port, which this line is not.
    assert!(matches!(
        kh.check("git.example.com", 2222, &blob(HOST), NOW),
        Err(HostKeyError::Unknown { .. })
    ));
}

#[test]
fn bracketed_names_carry_the_port() {
    let kh = file(&format!(
        "# a comment\n\n[127.0.0.1]:2222 {}\n[127.0.0.1]:* {}\n",
        key(HOST),
        key(HOST_EC)
    ));
    assert_eq!(
        kh.check("127.0.0.1", 2222, &blob(HOST), NOW),
        Ok(Accepted::Key { line: 3 })
    );
    assert_eq!(
        kh.check("127.0.0.1", 9999, &blob(HOST_EC), NOW),
        Ok(Accepted::Key { line: 4 })
    );
    assert!(kh.check("127.0.0.1", 22, &blob(HOST), NOW).is_err());
    assert!(kh.check("127.0.0.1", 2223, &blob(HOST), NOW).is_err());
}

#[test]
fn hashed_names_written_by_ssh_keygen_match_their_host_and_port() {
    let kh = file(HASHED);
    assert_eq!(
        kh.check("git.example.com", 22, &blob(HOST), NOW),
        Ok(Accepted::Key { line: 1 })
    );
    assert_eq!(
        kh.check("git.example.com", 2222, &blob(HOST), NOW),
        Ok(Accepted::Key { line: 2 })
    );
    assert!(matches!(
        kh.check("git.example.org", 22, &blob(HOST), NOW),
        Err(HostKeyError::Unknown { .. })
    ));
    assert!(matches!(
        kh.check("git.example.com", 2223, &blob(HOST), NOW),
        Err(HostKeyError::Unknown { .. })
    ));
}

#[test]
fn lists_wildcards_and_negation() {
    let kh = file(&format!(
        "a.example.com,*.git.example.com,!evil.git.example.com,h?st {}\n",
        key(HOST)
    ));
    for host in ["a.example.com", "x.git.example.com", "host", "hOst"] {
        assert_eq!(
            kh.check(host, 22, &blob(HOST), NOW),
            Ok(Accepted::Key { line: 1 }),
            "{host}"
        );
    }
    // A negated pattern excludes the host even though `*.git.example.com` names it.
    for host in [
        "evil.git.example.com",
        "git.example.com",
        "hoost",
        "b.example.com",
    ] {
        assert!(kh.check(host, 22, &blob(HOST), NOW).is_err(), "{host}");
    }
}

#[test]
fn a_different_key_of_the_same_type_is_a_changed_key() {
    let kh = file(&format!(
        "other.example.com {}\ngit.example.com {}\n",
        key(HOST),
        key(OTHER)
    ));
    let err = kh
        .check("git.example.com", 22, &blob(HOST), NOW)
        .unwrap_err();
    assert!(
        matches!(err, HostKeyError::Changed { line: 2, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("CHANGED"), "{text}");
    assert!(text.contains(&fingerprint(&blob(HOST))), "{text}");
    assert!(text.contains("ssh-keygen -R 'git.example.com'"), "{text}");
}

#[test]
fn an_unknown_host_says_its_fingerprint_and_the_keyscan_to_run() {
    let kh = file(&format!("git.example.com {}\n", key(HOST_EC)));
    let text = kh
        .check("git.example.com", 2222, &blob(HOST), NOW)
        .unwrap_err()
        .to_string();
    assert!(text.contains("[git.example.com]:2222"), "{text}");
    assert!(text.contains(&fingerprint(&blob(HOST))), "{text}");
    assert!(
        text.contains("ssh-keyscan -p 2222 git.example.com >> /etc/berth/known_hosts"),
        "{text}"
    );
    // Listed on port 22 with another type only: said so, still refused.
    let text = kh
        .check("git.example.com", 22, &blob(HOST), NOW)
        .unwrap_err()
        .to_string();
    assert!(text.contains("only other key types"), "{text}");
    assert!(
        text.contains("ssh-keyscan git.example.com >> /etc/berth/known_hosts"),
        "{text}"
    );
}

#[test]
fn a_revoked_key_is_refused_even_when_also_listed() {
    let kh = file(&format!("git.example.com {0}\n@revoked * {0}\n", key(HOST)));
    let err = kh
        .check("git.example.com", 22, &blob(HOST), NOW)
        .unwrap_err();
    assert!(
        matches!(err, HostKeyError::Revoked { line: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("REVOKED"), "{err}");
    // Revoking applies to the hosts it names only.
    let kh = file(&format!(
        "git.example.com {0}\n@revoked other.example.com {0}\n",
        key(HOST)
    ));
    assert!(kh.check("git.example.com", 22, &blob(HOST), NOW).is_ok());
}

#[test]
fn a_host_certificate_signed_by_a_listed_ca_is_accepted() {
    let kh = file(&format!(
        "@cert-authority *.example.com,[127.0.0.1]:* {}\n",
        key(CA)
    ));
    assert_eq!(
        kh.check("git.example.com", 22, &blob(CERT), NOW),
        Ok(Accepted::Certificate { line: 1 })
    );
    assert_eq!(
        kh.check("127.0.0.1", 2222, &blob(CERT), NOW),
        Ok(Accepted::Certificate { line: 1 })
    );
    // Valid "forever", as ssh-keygen signs without -V.
    assert_eq!(
        kh.check("git.example.com", 22, &blob(FOREVER_CERT), 4_000_000_000),
        Ok(Accepted::Certificate { line: 1 })
    );
    // A wildcard principal names the host, as OpenSSH allows for host certificates.
    assert_eq!(
        kh.check("a.example.com", 22, &blob(WILD_CERT), NOW),
        Ok(Accepted::Certificate { line: 1 })
    );
    // The CA line does not name this host.
    assert!(kh.check("127.0.0.1", 22, &blob(CERT), NOW).is_err());
    // The plain key alone is not vouched for by the CA.
    assert!(kh.check("git.example.com", 22, &blob(HOST), NOW).is_err());
}

#[test]
fn certificates_are_refused_outside_their_terms() {
    let kh = file(&format!("@cert-authority * {}\n", key(CA)));
    let refused = |host: &str, cert: &str, now: u64| {
        kh.check(host, 22, &blob(cert), now)
            .unwrap_err()
            .to_string()
    };
    // Not a principal.
    let text = refused("a.example.com", CERT, NOW);
    assert!(
        text.contains("principals (127.0.0.1, git.example.com)"),
        "{text}"
    );
    // Expired (2041) and not yet valid (2019).
    let text = refused("git.example.com", CERT, 2_240_611_200);
    assert!(text.contains("valid only from"), "{text}");
    assert!(refused("git.example.com", CERT, 1_546_300_800).contains("valid only from"));
    // A user certificate.
    let text = refused("git.example.com", USER_CERT, NOW);
    assert!(text.contains("not a host certificate"), "{text}");
    // Signed by a CA no line lists.
    let text = refused("git.example.com", CERT_CA2, NOW);
    assert!(text.contains("which no @cert-authority line"), "{text}");
    // Every refusal still names the key and how to add it.
    assert!(text.contains("ssh-keyscan git.example.com"), "{text}");
}

#[test]
fn a_certificate_whose_signature_does_not_verify_is_refused() {
    let kh = file(&format!("@cert-authority * {}\n", key(CA)));
    let mut forged = blob(CERT);
    // A byte of the principals changed after signing.
    let at = forged
        .windows(15)
        .position(|w| w == b"git.example.com")
        .unwrap();
    forged[at] = b'G';
    let text = kh
        .check("git.example.com", 22, &forged, NOW)
        .unwrap_err()
        .to_string();
    assert!(text.contains("its signature does not verify"), "{text}");
}

#[test]
fn a_refused_certificate_falls_back_to_its_listed_key() {
    // As OpenSSH: no CA vouches, but the certificate's key itself is listed.
    let kh = file(&format!("git.example.com {}\n", key(HOST)));
    assert_eq!(
        kh.check("git.example.com", 22, &blob(CERT_CA2), NOW),
        Ok(Accepted::Key { line: 1 })
    );
}

#[test]
fn a_revoked_ca_or_certified_key_refuses_the_certificate() {
    let kh = file(&format!(
        "@cert-authority * {}\n@revoked * {}\n",
        key(CA),
        key(CA)
    ));
    assert!(matches!(
        kh.check("git.example.com", 22, &blob(CERT), NOW),
        Err(HostKeyError::Revoked { line: 2, .. })
    ));
    let kh = file(&format!(
        "@cert-authority * {}\n@revoked * {}\n",
        key(CA),
        key(HOST)
    ));
    assert!(matches!(
        kh.check("git.example.com", 22, &blob(CERT), NOW),
        Err(HostKeyError::Revoked { line: 2, .. })
    ));
    // A CA line for other hosts does not vouch here; ca2 is not a CA at all.
    let kh = file(&format!(
        "@cert-authority other.example.com {}\ngit.example.com {}\n",
        key(CA),
        key(CA2)
    ));
    assert!(kh.check("git.example.com", 22, &blob(CERT), NOW).is_err());
}

#[test]
fn malformed_lines_are_refused_with_their_place() {
    let k = key(HOST);
    let b64 = HOST.split_whitespace().nth(1).unwrap();
    let cases = [
        (format!("@trusted * {k}"), "unknown marker `@trusted`"),
        ("@revoked".to_string(), "host list is missing"),
        (
            "git.example.com ssh-ed25519".to_string(),
            "expected `[marker] hosts",
        ),
        (
            "git.example.com ssh-ed25519 !!!".to_string(),
            "not valid base64",
        ),
        (
            format!("git.example.com ssh-rsa {b64}"),
            "the key's type is ssh-ed25519, but the line says ssh-rsa",
        ),
        (format!("|1|abc {k}"), "|1|salt|hash"),
        (format!("|1|YWJj|ZGVm {k}"), "20 bytes each"),
        (format!("|2|a|b {k}"), "only |1|"),
    ];
    for (line, want) in cases {
        let text = format!("# first\n{line}\n");
        let err = KnownHosts::parse(&text, Path::new("/k")).unwrap_err();
        assert!(err.starts_with("known_hosts /k:2: "), "{err}");
        assert!(err.contains(want), "{line}: {err}");
    }
}

#[test]
fn truncated_or_garbled_keys_from_the_server_are_refused_without_panic() {
    let kh = file(&format!(
        "@cert-authority * {}\ngit.example.com {}\n",
        key(CA),
        key(HOST)
    ));
    let cert = blob(CERT);
    for len in 0..cert.len() {
        assert!(
            kh.check("git.example.com", 22, &cert[..len], NOW).is_err(),
            "{len}"
        );
    }
    let mut long = cert.clone();
    long.push(0);
    assert!(kh.check("git.example.com", 22, &long, NOW).is_err());
    let mut huge = cert;
    huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(kh.check("git.example.com", 22, &huge, NOW).is_err());
}
