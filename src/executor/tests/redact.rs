//! Masking secrets in what berth says.

use crate::executor::redact::*;

#[test]
fn secret_names() {
    for k in [
        "API_KEY",
        "AWS_SECRET",
        "DB_PASSWORD",
        "GITHUB_TOKEN",
        "DATABASE_URL",
    ] {
        assert!(looks_secret(k), "{k}");
    }
    for k in ["LOG_FORMAT", "PORT", "KEYBOARD"] {
        assert!(!looks_secret(k), "{k}");
    }
}

#[test]
fn a_multi_line_secret_is_masked_line_by_line_when_its_lines_are_joined() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n";
    let r = Redactor::new(vec![pem.into()]);
    let joined = pem.lines().collect::<Vec<_>>().join(" | ");
    let masked = r.redact(&format!("exited with code 1; last output: {joined}"));
    assert_eq!(
        masked,
        "exited with code 1; last output: *** | *** | *** | ***"
    );
    assert_eq!(r.redact(pem), "***");
}

#[test]
fn absorbed_secrets_stay_masked() {
    let mut r = Redactor::new(vec!["old-secret-1".into()]);
    r.absorb(&Redactor::new(vec![
        "new-secret-22".into(),
        "old-secret-1".into(),
    ]));
    assert_eq!(r.redact("old-secret-1 new-secret-22"), "*** ***");
    // Absorbed once, not twice.
    assert_eq!(format!("{r:?}").matches("old-secret-1").count(), 1);
}

#[test]
fn masks_longest_first_and_skips_tiny_values() {
    let r = Redactor::new(vec!["s3cr3t".into(), "s3cr3t-extended".into(), "on".into()]);
    assert_eq!(r.redact("a s3cr3t-extended b s3cr3t on"), "a *** b *** on");
}
