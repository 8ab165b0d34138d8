//! Registry credentials from the Docker client configuration the operator already has
//! (`docker login` writes them to `~/.docker/config.json`; `DOCKER_CONFIG` moves it).

use std::path::PathBuf;

use base64::Engine as _;

use crate::runtime::RegistryAuth;

/// The registry host of an image reference, as `docker login` keys it.
pub(crate) fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            host.to_string()
        }
        _ => "https://index.docker.io/v1/".to_string(),
    }
}

fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
    }
}

/// Credentials for the registry of `image`, when the Docker config holds some in
/// `auths`. Credential helpers are not consulted.
pub(crate) fn registry_auth(image: &str) -> Option<RegistryAuth> {
    let text = std::fs::read_to_string(config_path()?).ok()?;
    auth_from_config(&text, image)
}

/// Looks `image`'s registry up in the text of a Docker config file.
pub(crate) fn auth_from_config(config: &str, image: &str) -> Option<RegistryAuth> {
    let doc: serde_json::Value = serde_json::from_str(config).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    let server = registry_of(image);
    let entry = auths.iter().find_map(|(k, v)| {
        let key = k
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let key = key.trim_end_matches('/');
        let want = server.trim_start_matches("https://").trim_end_matches('/');
        (key == want || key.split('/').next() == Some(want)).then_some(v)
    })?;
    let (username, password) = match entry.get("auth").and_then(|a| a.as_str()) {
        Some(b64) => {
            let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (u, p) = text.split_once(':')?;
            (u.to_string(), p.to_string())
        }
        None => (
            entry.get("username")?.as_str()?.to_string(),
            entry.get("password")?.as_str()?.to_string(),
        ),
    };
    Some(RegistryAuth {
        username,
        password,
        server,
    })
}
