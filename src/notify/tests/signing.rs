//! The signature of `json` bodies and the secret it is made with.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::super::sign::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::super::Secret;

/// The check a receiver makes, written from the README's steps.
pub(super) fn verify(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_mac) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_mac) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[test]
fn the_signature_covers_the_timestamp_and_the_body() {
    let secret = b"0123456789abcdef-secret";
    let body = br#"{"kind":"deployed"}"#;
    let [(t_name, t), (s_name, s)] = Secret::new(secret).headers(1_700_000_000, body);
    assert_eq!((t_name, s_name), (TIMESTAMP_HEADER, SIGNATURE_HEADER));
    assert_eq!(t, "1700000000");
    assert!(s.starts_with("sha256=") && s.len() == 7 + 64, "{s}");
    assert!(verify(secret, &t, body, &s));
    // Another time, another body or another secret does not verify.
    assert!(!verify(secret, "1700000001", body, &s));
    assert!(!verify(secret, &t, br#"{"kind":"failed"}"#, &s));
    assert!(!verify(b"another-secret-of-16", &t, body, &s));
    // A known answer, so that the construction cannot drift unnoticed:
    // printf '1700000000.{"kind":"deployed"}' | openssl dgst -sha256 -hmac 0123456789abcdef-secret
    assert_eq!(
        signature(secret, "1700000000", body),
        format!(
            "sha256={}",
            openssl_hmac(secret, b"1700000000.{\"kind\":\"deployed\"}")
        )
    );
}

/// HMAC-SHA256 by OpenSSL, a second implementation to compare with.
fn openssl_hmac(key: &[u8], data: &[u8]) -> String {
    let pkey = openssl::pkey::PKey::hmac(key).unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
    signer.update(data).unwrap();
    hex::encode(signer.sign_to_vec().unwrap())
}

#[test]
fn the_secret_file_is_checked_and_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::write(&good, "  a-long-random-secret-4f1a \n").unwrap();
    let secret = Secret::from_file(&good).unwrap();
    assert_eq!(secret, Secret::new(b"a-long-random-secret-4f1a"));
    assert_eq!(format!("{secret:?}"), "Secret(***)");

    let short = dir.path().join("short");
    std::fs::write(&short, "pw-4f1a\n").unwrap();
    let e = Secret::from_file(&short).unwrap_err();
    assert!(
        e.contains("at least 16") && e.contains("openssl rand"),
        "{e}"
    );
    assert!(!e.contains("pw-4f1a"), "{e}");

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    assert!(Secret::from_file(&empty)
        .unwrap_err()
        .contains("holds 0 byte"));

    let e = Secret::from_file(&dir.path().join("missing")).unwrap_err();
    assert!(e.contains("missing") && e.contains("No such file"), "{e}");

    let binary = dir.path().join("binary");
    std::fs::write(&binary, [0xff_u8; 40]).unwrap();
    assert!(Secret::from_file(&binary)
        .unwrap_err()
        .contains("not UTF-8"));
}
