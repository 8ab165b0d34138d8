//! The Docker client config as `docker` reads it, and which of its three places answers
//! for a registry: `credHelpers[<registry>]`, else `credsStore`, else `auths`. That is
//! the Docker CLI's order (`configfile.GetCredentialsStore`): a helper named for the
//! registry or for every registry is asked, and `auths` is read only when none is.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::runtime::RegistryAuth;

/// Longest helper name accepted (`docker-credential-<name>`).
const MAX_HELPER_NAME: usize = 64;

/// The parts of `config.json` that hold credentials; other keys are ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

/// One entry of `auths`, as `docker login` writes it (or as written by hand).
#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry { .. }")
    }
}

/// Where the credentials for one registry come from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Written in `auths`.
    Inline(RegistryAuth),
    /// Asked of `docker-credential-<name>`; `key` says which config key named it.
    Helper { name: String, key: HelperKey },
    /// The config has nothing for this registry: the pull goes without credentials.
    None,
}

/// The config key that named a credential helper, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HelperKey {
    /// `credHelpers["<registry>"]`.
    CredHelpers(String),
    /// `credsStore`.
    CredsStore,
}

impl std::fmt::Display for HelperKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelperKey::CredHelpers(r) => write!(f, "credHelpers[\"{r}\"]"),
            HelperKey::CredsStore => f.write_str("credsStore"),
        }
    }
}

/// What is wrong with a config; never holds a value of the file (it may be a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConfigProblem {
    /// Not JSON, or a key of the wrong type.
    #[error("it is not a valid Docker config ({what} at line {line}, column {column})")]
    Json {
        what: &'static str,
        line: usize,
        column: usize,
    },
    /// A helper name that is not a plain program-name suffix.
    #[error("{key} names the helper `{name}`; a helper name is up to 64 letters, digits, `.`, `_`, `-` (the program run is `docker-credential-<name>` on PATH)")]
    HelperName { key: HelperKey, name: String },
    /// An `auths` entry whose `auth` does not decode to `user:password`.
    #[error(
        "auths[\"{key}\"].auth is not base64 of `user:password`; run `docker login {key}` again"
    )]
    BadAuth { key: String },
}

impl DockerConfig {
    /// Reads the text of a `config.json`. serde's own message is not kept: it can quote
    /// a value, and a value may be a password.
    pub(crate) fn parse(text: &str) -> Result<Self, ConfigProblem> {
        serde_json::from_str(text).map_err(|e| ConfigProblem::Json {
            what: match e.classify() {
                serde_json::error::Category::Data => "a value of the wrong type",
                serde_json::error::Category::Eof => "unexpected end",
                _ => "a syntax error",
            },
            line: e.line(),
            column: e.column(),
        })
    }

    /// Where the credentials for `server` (a key as [`super::registry_key`] makes it)
    /// come from, in the Docker CLI's order.
    pub(crate) fn source(&self, server: &str) -> Result<Source, ConfigProblem> {
        // The registry only selects among the helpers the operator's config names: its
        // text is a map key here, never part of a program name.
        if let Some(name) = self.cred_helpers.get(server) {
            return helper(name, HelperKey::CredHelpers(server.to_string()));
        }
        if let Some(name) = self.creds_store.as_deref().filter(|n| !n.is_empty()) {
            return helper(name, HelperKey::CredsStore);
        }
        self.inline(server)
    }

    /// The `auths` entry for `server`: its exact key first, then any key whose host
    /// (scheme and path dropped, as older `docker login` wrote them) is `server`.
    fn inline(&self, server: &str) -> Result<Source, ConfigProblem> {
        let found = self.auths.get_key_value(server).or_else(|| {
            self.auths
                .iter()
                .find(|(k, _)| hostname(k) == hostname(server))
        });
        let Some((key, entry)) = found else {
            return Ok(Source::None);
        };
        let mut username = entry.username.clone().unwrap_or_default();
        let mut password = entry.password.clone().unwrap_or_default();
        if let Some(b64) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = || ConfigProblem::BadAuth { key: key.clone() };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| bad())?;
            let text = String::from_utf8(raw).map_err(|_| bad())?;
            let (u, p) = text.split_once(':').ok_or_else(bad)?;
            username = u.to_string();
            password = p.to_string();
        }
        let identity_token = entry.identitytoken.clone().filter(|t| !t.is_empty());
        if username.is_empty() && password.is_empty() && identity_token.is_none() {
            // `{}`: what `docker login` leaves in `auths` beside a credential store.
            return Ok(Source::None);
        }
        Ok(Source::Inline(RegistryAuth {
            username,
            password,
            identity_token,
            server: server.to_string(),
        }))
    }
}

/// A helper named by the config, checked: the name becomes part of a program name,
/// so a `/` (a path) or anything a shell would read is refused.
fn helper(name: &str, key: HelperKey) -> Result<Source, ConfigProblem> {
    if !valid_helper_name(name) {
        return Err(ConfigProblem::HelperName {
            key,
            name: name.chars().take(MAX_HELPER_NAME).collect(),
        });
    }
    Ok(Source::Helper {
        name: name.to_string(),
        key,
    })
}

/// Letters, digits, `.`, `_`, `-`; not empty, not `.` or `..`, at most 64 characters.
pub(crate) fn valid_helper_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HELPER_NAME
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The host of a registry key: `https://ghcr.io/v2/` → `ghcr.io` (Docker's
/// `ConvertToHostname`).
fn hostname(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}
