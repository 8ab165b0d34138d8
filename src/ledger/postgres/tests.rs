use super::*;
use tokio_postgres::config::SslMode;

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn url_and_environment_fill_each_other_and_the_password_never_shows() {
    let t = PgTarget::parse(
        "postgres://berth:s3cret@db.internal:6432/fleet?sslmode=verify-full",
        None,
        &env_of(&[]),
    )
    .unwrap();
    assert_eq!(t.describe(), "postgres://berth@db.internal:6432/fleet");
    assert!(t.verify_ca && t.verify_host);
    assert!(!format!("{t:?}").contains("s3cret"));

    let t = PgTarget::parse(
        "postgres://db.internal/fleet",
        None,
        &env_of(&[
            ("PGUSER", "deployer"),
            ("PGPASSWORD", "pw"),
            ("PGSSLMODE", "verify-ca"),
        ]),
    )
    .unwrap();
    assert_eq!(t.describe(), "postgres://deployer@db.internal:5432/fleet");
    assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
    assert!(t.verify_ca && !t.verify_host);
    assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
}

#[test]
fn a_password_file_wins_and_bad_input_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "from-file\n").unwrap();
    let t = PgTarget::parse(
        "postgres://berth@db/fleet?sslmode=disable",
        Some(&file),
        &env_of(&[("PGPASSWORD", "from-env")]),
    )
    .unwrap();
    assert_eq!(t.config.get_password(), Some(&b"from-file"[..]));
    assert_eq!(t.config.get_ssl_mode(), SslMode::Disable);

    let e =
        PgTarget::parse("postgres://berth@db/x?sslmode=strict", None, &env_of(&[])).unwrap_err();
    assert_eq!(e, "--coordination: unknown sslmode \"strict\"; use disable, prefer, require, verify-ca or verify-full");
    let e = PgTarget::parse("postgres://db/x", None, &env_of(&[])).unwrap_err();
    assert!(e.contains("no user"), "{e}");
    let e = PgTarget::parse(
        "postgres://u@db/x",
        Some(&dir.path().join("none")),
        &env_of(&[]),
    )
    .unwrap_err();
    assert!(e.starts_with("--coordination-password-file"), "{e}");
}
