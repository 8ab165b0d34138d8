use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::*;

const SECRET: &[u8] = b"hook-secret-7f3a";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
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

#[test]
fn each_host_is_told_by_its_event_header_gitea_and_forgejo_before_github() {
    let host = |pairs: &[(&str, &str)]| detect(&headers(pairs)).host;
    assert_eq!(host(&[("X-GitHub-Event", "push")]), GitHost::GitHub);
    assert_eq!(host(&[("X-Gitlab-Event", "Push Hook")]), GitHost::GitLab);
    assert_eq!(host(&[("X-Event-Key", "repo:push")]), GitHost::Bitbucket);
    // Gitea sends X-GitHub-Event and X-Gogs-Event beside its own; Forgejo also X-Gitea-Event.
    let gitea = [
        ("X-GitHub-Event", "push"),
        ("X-Gogs-Event", "push"),
        ("X-Gitea-Event", "push"),
    ];
    assert_eq!(host(&gitea), GitHost::Gitea);
    assert_eq!(
        host(&[("X-Forgejo-Event", "push"), ("X-GitHub-Event", "push")]),
        GitHost::Gitea
    );
    let none = detect(&HeaderMap::new());
    assert_eq!((none.host, none.event), (GitHost::GitHub, None));
}

#[test]
fn gitlab_token_is_the_secret_compared_whole() {
    let h = |t: &str| headers(&[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", t)]);
    let hook = detect(&h("x"));
    assert!(hook.verify(SECRET, &h("hook-secret-7f3a"), b"{}"));
    assert!(
        !hook.verify(SECRET, &h("hook-secret-7f3"), b"{}"),
        "a prefix"
    );
    assert!(
        !hook.verify(SECRET, &h("hook-secret-7f3ab"), b"{}"),
        "longer"
    );
    assert!(!hook.verify(SECRET, &h(""), b"{}"));
    let missing = headers(&[("X-Gitlab-Event", "Push Hook")]);
    assert!(!hook.verify(SECRET, &missing, b"{}"));
    // A GitHub signature does not stand in for the token.
    let signed = headers(&[
        ("X-Gitlab-Event", "Push Hook"),
        (
            "X-Hub-Signature-256",
            &format!("sha256={}", hmac_hex(SECRET, b"{}")),
        ),
    ]);
    assert!(!hook.verify(SECRET, &signed, b"{}"));
}

#[test]
fn gitea_and_forgejo_sign_with_a_bare_hex_hmac() {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let sig = hmac_hex(SECRET, body);
    for (event, signature) in [
        ("X-Gitea-Event", "X-Gitea-Signature"),
        ("X-Forgejo-Event", "X-Forgejo-Signature"),
    ] {
        let good = headers(&[(event, "push"), (signature, &sig)]);
        let hook = detect(&good);
        assert_eq!(hook.host, GitHost::Gitea);
        assert!(hook.verify(SECRET, &good, body), "{signature}");
        assert!(!hook.verify(SECRET, &good, b"{}"), "another body");
        assert!(!hook.verify(b"other", &good, body), "another secret");
        let prefixed = headers(&[(event, "push"), (signature, &format!("sha256={sig}"))]);
        assert!(!hook.verify(SECRET, &prefixed, body), "no prefix is sent");
        let missing = headers(&[(event, "push")]);
        assert!(!hook.verify(SECRET, &missing, body));
    }
    // Gitea's X-Hub-Signature-256 alone does not stand in for its own header.
    let only_github = headers(&[
        ("X-Gitea-Event", "push"),
        ("X-Hub-Signature-256", &format!("sha256={sig}")),
    ]);
    assert!(!detect(&only_github).verify(SECRET, &only_github, body));
}

#[test]
fn bitbucket_signs_with_x_hub_signature_sha256() {
    let body = br#"{"push":{"changes":[]}}"#;
    let sig = format!("sha256={}", hmac_hex(SECRET, body));
    let good = headers(&[("X-Event-Key", "repo:push"), ("X-Hub-Signature", &sig)]);
    let hook = detect(&good);
    assert!(hook.verify(SECRET, &good, body));
    assert!(!hook.verify(SECRET, &good, b"{}"));
    let bare = headers(&[
        ("X-Event-Key", "repo:push"),
        ("X-Hub-Signature", &hmac_hex(SECRET, body)),
    ]);
    assert!(!hook.verify(SECRET, &bare, body), "the prefix is required");
    let missing = headers(&[("X-Event-Key", "repo:push")]);
    assert!(!hook.verify(SECRET, &missing, body));
}

fn event(pairs: &[(&str, &str)], body: &str) -> Event {
    let h = headers(pairs);
    detect(&h).event(&h, body.as_bytes()).unwrap()
}

fn push(branches: &[&str]) -> Event {
    Event::Push(branches.iter().map(|b| b.to_string()).collect())
}

#[test]
fn pushes_name_their_branch_from_each_hosts_payload() {
    let github = r#"{"ref":"refs/heads/main","before":"0","after":"1","commits":[]}"#;
    assert_eq!(
        event(&[("X-GitHub-Event", "push")], github),
        push(&["main"])
    );
    assert_eq!(
        event(&[("X-GitHub-Event", "ping")], r#"{"zen":"x"}"#),
        Event::Other("ping".into())
    );
    let tag = r#"{"ref":"refs/tags/v1.0","object_kind":"tag_push"}"#;
    assert_eq!(
        event(&[("X-Gitlab-Event", "Tag Push Hook")], tag),
        push(&["refs/tags/v1.0"])
    );
    let gitlab = r#"{"object_kind":"push","ref":"refs/heads/feature/x"}"#;
    assert_eq!(
        event(&[("X-Gitlab-Event", "Push Hook")], gitlab),
        push(&["feature/x"])
    );
    assert_eq!(
        event(
            &[("X-Gitea-Event", "push")],
            r#"{"ref":"refs/heads/develop"}"#
        ),
        push(&["develop"])
    );
    // Bitbucket Cloud: a branch pushed, a tag pushed, a branch deleted.
    let cloud = r#"{"push":{"changes":[
        {"new":{"type":"branch","name":"main","target":{"hash":"abc"}},"old":{"type":"branch","name":"main"}},
        {"new":{"type":"tag","name":"v2"},"old":null},
        {"new":null,"old":{"type":"branch","name":"gone"}}]}}"#;
    assert_eq!(
        event(&[("X-Event-Key", "repo:push")], cloud),
        push(&["main", "gone"])
    );
    // Bitbucket Server: `ref.displayId`, `ref.type`, `refId`.
    let server = r#"{"eventKey":"repo:refs_changed","changes":[
        {"ref":{"id":"refs/heads/master","displayId":"master","type":"BRANCH"},"refId":"refs/heads/master","type":"UPDATE"},
        {"ref":{"id":"refs/tags/v1","displayId":"v1","type":"TAG"},"refId":"refs/tags/v1","type":"ADD"},
        {"refId":"refs/heads/old-style","type":"UPDATE"}]}"#;
    assert_eq!(
        event(&[("X-Event-Key", "repo:refs_changed")], server),
        push(&["master", "old-style"])
    );
    assert_eq!(
        event(&[("X-Event-Key", "diagnostics:ping")], "{}"),
        Event::Other("diagnostics:ping".into())
    );
    // No event header: an event of no name, as before hosts were told apart.
    assert_eq!(event(&[], ""), Event::Other(String::new()));
}

#[test]
fn a_form_encoded_payload_is_read_from_its_payload_field() {
    let form = "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
    let h = headers(&[
        ("X-GitHub-Event", "push"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ]);
    assert_eq!(
        detect(&h).event(&h, form.as_bytes()).unwrap(),
        push(&["main"])
    );
}

#[test]
fn a_push_whose_payload_is_not_json_is_an_error_that_quotes_no_body() {
    let h = headers(&[("X-Gitlab-Event", "Push Hook")]);
    let e = detect(&h).event(&h, b"not json hook-secret").unwrap_err();
    assert!(!e.to_string().contains("hook-secret"), "{e}");
    let h = headers(&[("X-Event-Key", "repo:push")]);
    assert!(detect(&h).event(&h, br#"{"push":{}}"#).is_err());
}

#[test]
fn the_watched_branch_may_be_written_as_a_ref() {
    assert_eq!(branch_name("refs/heads/main"), "main");
    assert_eq!(branch_name("main"), "main");
}
