use super::*;

#[test]
fn a_password_in_the_userinfo_is_masked() {
    assert_eq!(
        redact_url("https://user:token@git.example/x.git"),
        "https://user:***@git.example/x.git"
    );
    assert_eq!(
        redact_url("postgres://berth:s3cret@db.internal:5432/fleet?sslmode=verify-full"),
        "postgres://berth:***@db.internal:5432/fleet?sslmode=verify-full"
    );
    assert_eq!(
        redact_url("https://user:pass@host"),
        "https://user:***@host"
    );
    // An empty password is still a password field.
    assert_eq!(redact_url("https://user:@host/"), "https://user:***@host/");
}

#[test]
fn a_password_holding_at_signs_or_slashes_is_masked_whole() {
    assert_eq!(
        redact_url("https://user:p@ss@git.example/x.git"),
        "https://user:***@git.example/x.git"
    );
    assert_eq!(
        redact_url("https://user:pa/ss@git.example/x.git"),
        "https://***@git.example/x.git"
    );
    assert_eq!(
        redact_url("https://user:pa?ss@git.example/x.git"),
        "https://***@git.example/x.git"
    );
}

#[test]
fn a_lone_user_name_is_masked_where_it_can_be_a_token() {
    assert_eq!(
        redact_url("https://ghp_abcdef@github.com/o/r.git"),
        "https://***@github.com/o/r.git"
    );
    assert_eq!(
        redact_url("ssh://git@github.com/o/r.git"),
        "ssh://git@github.com/o/r.git"
    );
    assert_eq!(
        redact_url("postgres://berth@db/berth"),
        "postgres://berth@db/berth"
    );
}

#[test]
fn scp_like_remotes_paths_and_plain_urls_are_left_alone() {
    for s in [
        "git@github.com:owner/repo.git",
        "/srv/desired",
        "./desired",
        "local",
        "https://git.example/x.git",
        "http://hooks.example:8080/T/B/C",
        "file:///srv/desired.git",
        "http://[::1]:9000/hook?project=shop#frag",
        "http://registry:8080/@scope/pkg",
        "https://host/@scope/pkg",
        "",
    ] {
        assert_eq!(redact_url(s), s);
    }
}

#[test]
fn secret_query_values_are_masked_and_others_kept() {
    assert_eq!(
        redact_url("https://hooks.example/T?token=abc&channel=ops"),
        "https://hooks.example/T?token=***&channel=ops"
    );
    assert_eq!(
        redact_url("http://h/x?api_key=1&Secret=2&password=3&sig=4&X-Amz-Signature=5&v=1#top"),
        "http://h/x?api_key=***&Secret=***&password=***&sig=***&X-Amz-Signature=***&v=1#top"
    );
    assert_eq!(
        redact_url("http://h?access_token=z"),
        "http://h?access_token=***"
    );
    assert_eq!(
        redact_url("http://h/?next=https://u:p@x/&a=b"),
        "http://h/?next=https://u:***@x/&a=b"
    );
    // A parameter without a value has nothing to mask.
    assert_eq!(redact_url("http://h/?token&key="), "http://h/?token&key=");
}

#[test]
fn credentials_and_query_are_masked_together() {
    assert_eq!(
        redact_url("https://u:p@h/x?token=t"),
        "https://u:***@h/x?token=***"
    );
}

#[test]
fn urls_inside_text_are_masked_and_the_rest_kept() {
    assert_eq!(
        redact_urls_in(
            "fetch https://user:secret@git.example/x.git (main): failed to resolve address for git.example"
        ),
        "fetch https://user:***@git.example/x.git (main): failed to resolve address for git.example"
    );
    assert_eq!(
        redact_urls_in("a 'postgres://a:b@h/d' and \"http://h/?key=k\" then git@h:p"),
        "a 'postgres://a:***@h/d' and \"http://h/?key=***\" then git@h:p"
    );
    assert_eq!(
        redact_urls_in("two: https://a:1@x https://b:2@y"),
        "two: https://a:***@x https://b:***@y"
    );
    assert_eq!(redact_urls_in("no url here: a://"), "no url here: a://");
    assert_eq!(redact_urls_in("ends with ://"), "ends with ://");
    assert_eq!(
        redact_urls_in("日本 https://u:p@h/ 語"),
        "日本 https://u:***@h/ 語"
    );
}

#[test]
fn redaction_is_idempotent() {
    for s in [
        "https://user:token@git.example/x.git?token=a",
        "https://ghp@h/",
        "https://user:pa/ss@h/",
    ] {
        let once = redact_url(s);
        assert_eq!(redact_url(&once), once);
        assert_eq!(redact_urls_in(&once), once);
    }
}
