//! Registry credentials found as the Docker client finds them, from the config the
//! operator already has: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`;
//! `credHelpers[<registry>]`, else `credsStore` (a `docker-credential-<name>` program
//! on PATH), else `auths` (`docker login`'s entries). The image reference comes from a
//! commit and is not trusted: its registry host only selects among what the config
//! names, and a host that is not a host name is refused.

mod config;
mod helper;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use config::{ConfigProblem, DockerConfig, HelperKey, Source};
pub(crate) use helper::HelperError;

use crate::runtime::RegistryAuth;

/// How long a credential helper may take before it is killed.
pub(crate) const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The key Docker files Docker Hub's credentials under.
pub(crate) const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// Why the credentials for a registry could not be had. Never holds a secret: config
/// values are not quoted and a helper's message is cut and masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// The image names a registry that is not a host name.
    #[error("registry `{}` of image `{}` is not a host name (letters, digits, `-` and `.`, an optional `:port`); fix the image reference", .host.escape_debug(), .image.escape_debug())]
    Registry { image: String, host: String },
    /// The config file exists but cannot be read.
    #[error("cannot read the Docker config {}: {error}; fix its permissions for the user berth runs as, or point DOCKER_CONFIG at another directory", .path.display())]
    Read { path: PathBuf, error: String },
    /// The config file is not a config berth can use.
    #[error("Docker config {}: {problem}", .path.display())]
    Config {
        path: PathBuf,
        problem: ConfigProblem,
    },
    /// The credential helper the config names for the registry failed.
    #[error("registry credentials for {server} ({key} in {}): {error}", .path.display())]
    Helper {
        server: String,
        key: HelperKey,
        path: PathBuf,
        error: Box<HelperError>,
    },
}

/// Where credentials are looked up: the config file, the PATH helpers are found on,
/// and the helpers' timeout. [`AuthEnv::from_process`] reads the process environment.
#[derive(Debug, Clone)]
pub(crate) struct AuthEnv {
    /// `config.json`; `None` when neither `DOCKER_CONFIG` nor `HOME` is set.
    pub(crate) config: Option<PathBuf>,
    /// The `PATH` value searched for `docker-credential-<name>`.
    pub(crate) path: Option<OsString>,
    pub(crate) timeout: Duration,
}

impl AuthEnv {
    /// `DOCKER_CONFIG` (a directory), else `$HOME/.docker`; the process's `PATH`.
    pub(crate) fn from_process() -> Self {
        Self::from_vars(
            std::env::var_os("DOCKER_CONFIG"),
            std::env::var_os("HOME"),
            std::env::var_os("PATH"),
        )
    }

    /// The same from given values of `DOCKER_CONFIG`, `HOME` and `PATH`.
    pub(crate) fn from_vars(
        docker_config: Option<OsString>,
        home: Option<OsString>,
        path: Option<OsString>,
    ) -> Self {
        let config = match docker_config.filter(|d| !d.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => home
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".docker").join("config.json")),
        };
        Self {
            config,
            path,
            timeout: HELPER_TIMEOUT,
        }
    }
}

/// The credentials for the registry of `image`, from the process's Docker config;
/// `Ok(None)` when it has none for that registry (the pull goes anonymously). For
/// commands that ask a registry themselves (a manifest request); pulls share one
/// lookup per registry through [`server_auth`].
pub(crate) async fn registry_auth(image: &str) -> Result<Option<RegistryAuth>, AuthError> {
    let server = registry_key(image)?;
    server_auth(&AuthEnv::from_process(), &server).await
}

/// The credentials for `server` (a key as [`registry_key`] makes it) under `env`.
pub(crate) async fn server_auth(
    env: &AuthEnv,
    server: &str,
) -> Result<Option<RegistryAuth>, AuthError> {
    let Some(path) = env.config.clone() else {
        return Ok(None);
    };
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AuthError::Read {
                path,
                error: e.to_string(),
            })
        }
    };
    let config_error = |problem| AuthError::Config {
        path: path.clone(),
        problem,
    };
    let source = DockerConfig::parse(&text)
        .and_then(|c| c.source(server))
        .map_err(config_error)?;
    match source {
        Source::None => Ok(None),
        Source::Inline(auth) => Ok(Some(auth)),
        Source::Helper { name, key } => {
            let helper_error = |error| AuthError::Helper {
                server: server.to_string(),
                key: key.clone(),
                path: path.clone(),
                error: Box::new(error),
            };
            let program = helper::find_program(&name, env.path.as_ref()).map_err(helper_error)?;
            tracing::debug!(registry = %server, helper = %program.display(), "asking credential helper");
            helper::get(&program, server, env.timeout)
                .await
                .map_err(helper_error)
        }
    }
}

/// The key Docker files an image's registry credentials under: the registry host
/// (`127.0.0.1:5000`, `ghcr.io`), or [`DOCKER_HUB`] for Docker Hub's images. A first
/// path component is a host when it has a `.` or a `:` or is `localhost`, as Docker
/// reads references.
pub(crate) fn registry_key(image: &str) -> Result<String, AuthError> {
    let host = match image.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => host,
        _ => return Ok(DOCKER_HUB.to_string()),
    };
    if matches!(host, "docker.io" | "index.docker.io") {
        return Ok(DOCKER_HUB.to_string());
    }
    if !valid_host(host) {
        return Err(AuthError::Registry {
            image: image.chars().take(300).collect(),
            host: host.chars().take(300).collect(),
        });
    }
    Ok(host.to_string())
}

/// A DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.starts_with('[') || n.ends_with(']') => (n, Some(p)),
        _ => (host, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    let name_ok = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':'),
        None => {
            name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
    };
    port_ok && name_ok
}
