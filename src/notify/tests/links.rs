//! Links to commits derived from the remote's URL.

use super::super::CommitLinks;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn link(remote: &str) -> Option<String> {
    CommitLinks::from_remote(remote)?.commit(SHA)
}

#[test]
fn known_forges_over_https_ssh_and_scp_like_remotes() {
    let cases = [
        (
            "https://github.com/acme/shop.git",
            "https://github.com/acme/shop/commit/",
        ),
        (
            "https://deploy:ghp_tok3n@github.com/acme/shop",
            "https://github.com/acme/shop/commit/",
        ),
        (
            "git@github.com:acme/shop.git",
            "https://github.com/acme/shop/commit/",
        ),
        (
            "ssh://git@github.com:22/acme/shop.git",
            "https://github.com/acme/shop/commit/",
        ),
        (
            "https://GitHub.com/acme/shop/",
            "https://github.com/acme/shop/commit/",
        ),
        (
            "https://gitlab.com/group/sub/shop.git",
            "https://gitlab.com/group/sub/shop/-/commit/",
        ),
        (
            "git@gitlab.com:group/shop.git",
            "https://gitlab.com/group/shop/-/commit/",
        ),
        (
            "https://codeberg.org/acme/shop.git",
            "https://codeberg.org/acme/shop/commit/",
        ),
        (
            "git@gitea.com:acme/shop.git",
            "https://gitea.com/acme/shop/commit/",
        ),
        (
            "https://x-token-auth:tok@bitbucket.org/acme/shop.git",
            "https://bitbucket.org/acme/shop/commits/",
        ),
        (
            "git@bitbucket.org:acme/shop.git",
            "https://bitbucket.org/acme/shop/commits/",
        ),
    ];
    for (remote, base) in cases {
        assert_eq!(link(remote), Some(format!("{base}{SHA}")), "{remote}");
    }
}

#[test]
fn no_link_for_unknown_hosts_local_paths_or_odd_paths() {
    for remote in [
        "https://git.example.com/acme/shop.git",
        "git@git.internal:acme/shop.git",
        "/srv/deploy",
        "./repo",
        "file:///srv/deploy.git",
        "https://github.com/acme",
        "https://github.com/acme/shop/extra",
        "https://github.com/acme/../shop",
        "https://github.com/acme/sh%22op",
        "https://github.com/acme/shop?x=1",
        "git@github.com:acme/<script>.git",
        "",
    ] {
        let got = link(remote);
        // `?x=1` is dropped by the parser: the repository is still acme/shop.
        if remote.ends_with("?x=1") {
            assert_eq!(
                got,
                Some(format!("https://github.com/acme/shop/commit/{SHA}"))
            );
        } else {
            assert_eq!(got, None, "{remote}");
        }
    }
}

#[test]
fn a_link_needs_a_commit_id_and_never_carries_credentials() {
    let links = CommitLinks::from_remote("https://deploy:ghp_s3cret@github.com/acme/shop").unwrap();
    assert_eq!(links.commit("main"), None);
    assert_eq!(links.commit("0123"), None);
    assert_eq!(links.commit(&"g".repeat(40)), None);
    let sha256 = "ab".repeat(32);
    assert_eq!(
        links.commit(&sha256),
        Some(format!("https://github.com/acme/shop/commit/{sha256}"))
    );
    assert!(!format!("{links:?}").contains("s3cret"));
}
