//! The allowed-signers file as OpenSSH writes it: its format, its errors with file and
//! line, validity times and namespace patterns.

use super::*;

#[test]
fn parses_the_allowed_signers_format() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let (kind, data) = alice.split_once(' ').unwrap();
    let data = data.split_whitespace().next().unwrap();
    let text = format!(
        "# deployers\n\
         \n\
         \t  # indented comment\n\
         alice@example.com {alice}\n\
         alice@example.com,bob@example.com\t{kind}\t{data}\r\n\
         \"carol smith\" namespaces=\"git\",valid-after=\"20240101\" {kind} {data} laptop key\n\
         dave namespaces=\"a \\\"quoted\\\", list\" {kind} {data}\n"
    );
    let signers = allowed(&text);
    assert_eq!(signers.len(), 4);
    assert!(!signers.is_empty());
    assert_eq!(
        signers.signers[1].principals,
        "alice@example.com,bob@example.com"
    );
    assert_eq!(signers.signers[2].principals, "carol smith");
    assert_eq!(signers.signers[2].namespaces.as_deref(), Some("git"));
    assert_eq!(signers.signers[2].valid_after, Some(1_704_067_200));
    assert_eq!(
        signers.signers[3].namespaces.as_deref(),
        Some("a \"quoted\", list")
    );
    assert!(signers
        .signers
        .iter()
        .all(|signer| signer.key == signers.signers[0].key));
}

#[test]
fn parse_errors_name_file_and_line() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let cases = [
        ("alice".to_owned(), "no public key"),
        ("alice ssh-ed25519".to_owned(), "no public key"),
        (
            "alice ssh-ed25519 AAAAnotbase64!".to_owned(),
            "invalid ssh-ed25519 public key",
        ),
        (
            format!("alice cert-authority {alice}"),
            "cert-authority lines are not supported",
        ),
        (
            format!("alice cert-authority,namespaces=\"git\" {alice}"),
            "cert-authority",
        ),
        (
            format!("alice no-touch-required {alice}"),
            "`no-touch-required` is neither",
        ),
        (
            format!("alice namespaces=git {alice}"),
            "must be in double quotes",
        ),
        (format!("alice namespaces=\"git {alice}"), "never close"),
        (format!("alice namespaces {alice}"), "needs a value"),
        (
            format!("alice namespaces=\"git\",namespaces=\"file\" {alice}"),
            "given twice",
        ),
        (
            format!("alice namespaces=\"git\"x {alice}"),
            "unexpected `x`",
        ),
        (
            format!("alice valid-after=\"2024\" {alice}"),
            "`2024` is not a time",
        ),
        (
            format!("alice valid-after=\"20240230\" {alice}"),
            "is not a time",
        ),
        (
            format!("alice valid-after=\"20250101\",valid-before=\"20240101\" {alice}"),
            "never valid",
        ),
        (format!("\"alice {alice}"), "never closes"),
        (format!("\"\" {alice}"), "principals field is empty"),
        (format!(", {alice}"), "principals field is empty"),
        ("alice namespaces=\"git\"\t".to_owned(), "no public key"),
    ];
    for (line, expected) in cases {
        let err = parse_error(&format!("# comment\n\nbob {alice}\n{line}\n"));
        assert!(
            err.starts_with("allowed_signers:4: ") && err.contains(expected),
            "line {line:?}: got {err:?}, expected to contain {expected:?}"
        );
    }
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let fx = Fixture::new();
    let alice = fx.ed25519("alice");
    let path = fx.path("allowed_signers");

    std::fs::write(&path, format!("alice {alice}\n")).unwrap();
    assert_eq!(AllowedSigners::load(&path).unwrap().len(), 1);

    std::fs::write(&path, format!("alice {alice}\nbroken\n")).unwrap();
    let err = AllowedSigners::load(&path).unwrap_err();
    assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");

    let missing = fx.path("nope");
    let err = AllowedSigners::load(&missing).unwrap_err();
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn times_are_read_as_utc() {
    assert_eq!(parse_time("19700101"), Ok(0));
    assert_eq!(parse_time("20240601120000Z"), Ok(COMMIT_TIME));
    assert_eq!(parse_time("202406011200utc"), Ok(COMMIT_TIME));
    assert_eq!(parse_time("20240229"), Ok(1_709_164_800));
    assert_eq!(parse_time("19691231235959"), Ok(-1));
    for bad in [
        "",
        "Z",
        "2024060",
        "202406011",
        "20231301",
        "20230229",
        "20240601240000",
        "2024-06-01",
        "20240601 1200",
    ] {
        assert!(parse_time(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn namespace_patterns_follow_openssh() {
    assert!(match_pattern_list("git", "git"));
    assert!(match_pattern_list("git", "file,git"));
    assert!(match_pattern_list("git", "g*"));
    assert!(match_pattern_list("git", "?i?"));
    assert!(!match_pattern_list("git", "file"));
    assert!(!match_pattern_list("git", "gi"));
    assert!(!match_pattern_list("git", "*,!git"));
    assert!(!match_pattern_list("git", "!file"));
    assert!(!match_pattern_list("git", ""));
}
