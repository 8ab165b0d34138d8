use super::*;

#[test]
fn state_changes_need_the_hmac_over_tcp_and_nothing_over_the_socket() {
    let secret = b"It's a Secret to Everybody";
    let body = b"Hello, World!";
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let tcp = Transport::Tcp;
    assert_eq!(authorize(tcp, None, body, None), Err(Refusal::NoSecret));
    assert_eq!(
        authorize(tcp, None, body, Some(good)),
        Err(Refusal::NoSecret)
    );
    assert_eq!(
        authorize(tcp, Some(secret), body, None),
        Err(Refusal::BadSignature)
    );
    assert_eq!(
        authorize(tcp, Some(secret), b"other body", Some(good)),
        Err(Refusal::BadSignature)
    );
    assert_eq!(authorize(tcp, Some(secret), body, Some(good)), Ok(()));
    let unix = Transport::ControlSocket;
    assert_eq!(authorize(unix, None, body, None), Ok(()));
    assert_eq!(
        authorize(unix, Some(secret), body, Some("sha256=00")),
        Ok(())
    );
}

#[test]
fn github_signatures() {
    // The example of GitHub's webhook documentation.
    let secret = b"It's a Secret to Everybody";
    let body = b"Hello, World!";
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert!(signature_ok(secret, body, Some(good)));
    assert!(!signature_ok(secret, b"Hello, World?", Some(good)));
    assert!(!signature_ok(b"other", body, Some(good)));
    assert!(!signature_ok(secret, body, None));
    assert!(!signature_ok(secret, body, Some("sha1=abc")));
    assert!(!signature_ok(secret, body, Some("sha256=zz")));
}
