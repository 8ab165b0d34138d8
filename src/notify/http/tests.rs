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

#[test]
fn a_format_prefix_picks_the_format_and_a_plain_url_the_default() {
    let t =
        Target::parse_spec("slack=https://hooks.slack.com/services/T/B/X", Format::Json).unwrap();
    assert_eq!(t.format(), Format::Slack);
    assert_eq!(t.url.as_str(), "https://hooks.slack.com/services/T/B/X");
    for (spec, format) in [
        ("https://relay.local/x?a=b", Format::Discord),
        ("HTTP://relay.local/x", Format::Discord),
        ("Teams=https://h/x", Format::Teams),
        (" mattermost = https://chat/hooks/x", Format::Slack),
        (
            "discord=https://discord.com/api/webhooks/1/t",
            Format::Discord,
        ),
        ("json=https://h/x", Format::Json),
    ] {
        assert_eq!(
            Target::parse_spec(spec, Format::Discord).unwrap().format(),
            format,
            "{spec}"
        );
    }
}

#[test]
fn an_unknown_format_is_refused_with_the_formats_to_choose_from() {
    let e = Target::parse_spec("teems=https://hooks.example/T/s3cret", Format::Json).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown notification format `teems` before `=`; write one of json, slack (or \
         mattermost), discord, teams, ntfy, e.g. `slack=https://hooks.slack.com/services/…`; \
         a URL without a prefix gets --notify-format"
    );
    // A long or odd prefix is not quoted: it may be a secret pasted in the wrong place.
    let e = Target::parse_spec("tok-3f9a0b1c2d3e4f5a6b=https://h/x", Format::Json).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown notification format (not shown)"),
        "{e}"
    );
    assert_eq!(
        Target::parse_spec("slack:https://h/x", Format::Json),
        Err(UrlError::Scheme)
    );
    assert_eq!(
        Target::parse_spec("slack=ftp://h/x", Format::Json),
        Err(UrlError::Scheme)
    );
}

#[test]
fn ntfy_posts_to_the_root_with_the_topic_from_the_path() {
    let t = Target::parse_spec("ntfy=https://ntfy.sh/berth-alerts", Format::Json).unwrap();
    assert_eq!(
        (t.url.as_str(), t.topic()),
        ("https://ntfy.sh/", "berth-alerts")
    );
    let t = Target::parse_spec(
        "ntfy=https://h:8080/ntfy/ops_1/?auth=QmVhcmVy",
        Format::Json,
    )
    .unwrap();
    assert_eq!(
        (t.url.as_str(), t.topic()),
        ("https://h:8080/ntfy/?auth=QmVhcmVy", "ops_1")
    );
    for bad in [
        "ntfy=https://ntfy.sh",
        "ntfy=https://ntfy.sh/",
        "ntfy=https://ntfy.sh/a%20b",
        &format!("ntfy=https://ntfy.sh/{}", "t".repeat(65)),
    ] {
        assert_eq!(
            Target::parse_spec(bad, Format::Json),
            Err(UrlError::NtfyTopic),
            "{bad}"
        );
    }
}

#[test]
fn specs_are_shown_by_format_scheme_and_host_only() {
    assert_eq!(
        redact_spec("slack=https://hooks.slack.com/services/T/B/s3cret"),
        "slack=https://hooks.slack.com/…"
    );
    assert_eq!(
        redact_spec("https://u:pw-4f1a@relay.local:8443/h?token=t-4f1a"),
        "https://relay.local:8443/…"
    );
    assert_eq!(redact_spec("teems=https://h/x/s3cret"), "teems=https://h/…");
    assert_eq!(
        redact_spec("tok-3f9a0b1c2d3e4f5a6b=https://h/x"),
        "…=https://h/…"
    );
    assert_eq!(redact_spec("s3cret-token"), "(not a URL)");
    // A password with a raw `/` is not taken for the host.
    let shown = redact_spec("https://u:pa/ss-4f1a@h/x");
    assert!(!shown.contains("pa") && !shown.contains("4f1a"), "{shown}");
    let e = Target::parse("https://u:pa/ss-4f1a@h/x").unwrap_err();
    assert!(!e.to_string().contains("pa"), "{e}");
    // Log lines name the format and the host.
    let t = Target::parse_spec(
        "discord=https://discord.com/api/webhooks/1/s3cret",
        Format::Json,
    )
    .unwrap();
    assert_eq!(t.label(), "discord https://discord.com/…");
}
