//! Registry credentials from the Docker config the operator already has.

use base64::Engine as _;

use crate::executor::auth::*;

#[test]
fn registry_hosts() {
    assert_eq!(registry_of("127.0.0.1:5000/app:v1"), "127.0.0.1:5000");
    assert_eq!(registry_of("ghcr.io/o/r:v1"), "ghcr.io");
    assert_eq!(registry_of("caddy:2.7"), "https://index.docker.io/v1/");
    assert_eq!(
        registry_of("library/caddy:2.7"),
        "https://index.docker.io/v1/"
    );
}

#[test]
fn reads_auths_as_docker_login_writes_them() {
    let b64 = base64::engine::general_purpose::STANDARD.encode("bot:s3cret");
    let cfg = format!(
        r#"{{"auths": {{"ghcr.io": {{"auth": "{b64}"}}, "https://index.docker.io/v1/": {{"auth": "{b64}"}}}}}}"#
    );
    let a = auth_from_config(&cfg, "ghcr.io/o/r:v1").unwrap();
    assert_eq!(
        (a.username.as_str(), a.password.as_str()),
        ("bot", "s3cret")
    );
    assert!(auth_from_config(&cfg, "caddy:2.7").is_some());
    assert!(auth_from_config(&cfg, "quay.io/x:v1").is_none());
}
