use super::*;

#[test]
fn redacts_to_scheme_host_and_port() {
    let t = Target::parse("http://relay.local:8080/hooks/abc?x=1#frag").unwrap();
    assert_eq!(t.redacted(), "http://relay.local:8080/…");
    let t = Target::parse("HTTPS://hooks.example/services/T/B/X").unwrap();
    assert_eq!(t.redacted(), "https://hooks.example/…");
    let t = Target::parse("http://[::1]:9000/x").unwrap();
    assert_eq!(t.redacted(), "http://[::1]:9000/…");
    // The default port is not shown.
    let t = Target::parse("https://hooks.example:443/x").unwrap();
    assert_eq!(t.redacted(), "https://hooks.example/…");
}

#[test]
fn rejects_what_it_cannot_send() {
    assert_eq!(Target::parse("ftp://x/"), Err(UrlError::Scheme));
    assert_eq!(Target::parse("example.com/x"), Err(UrlError::Scheme));
    assert_eq!(
        Target::parse("http://u:p@example/"),
        Err(UrlError::Credentials)
    );
    for bad in [
        "http://:80/",
        "http://h:99999/",
        "http://h:0/",
        "http://::1/",
        "http://[::1/",
    ] {
        assert!(
            matches!(Target::parse(bad), Err(UrlError::Authority(_))),
            "{bad}"
        );
    }
    // The error quotes the authority, never the path that may hold a secret.
    let e = Target::parse("https://h:99999/hooks/s3cret").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid host or port in notification URL: h:99999"
    );
}

#[test]
fn excerpts_are_short_and_flat() {
    assert_eq!(excerpt(b"invalid_payload\r\n"), "invalid_payload");
    let long = vec![b'a'; 500];
    assert_eq!(excerpt(&long).chars().count(), BODY_EXCERPT + 1);
}
