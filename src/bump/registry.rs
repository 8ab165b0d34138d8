//! `--check-image`: asks the image's registry whether the tag exists, as `docker pull`
//! would find it: `HEAD /v2/<name>/manifests/<reference>` accepting OCI indexes and
//! manifests and Docker manifest lists and manifests, answering a `Bearer` token
//! challenge or a `Basic` one with the Docker client's stored credentials.

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::Method;

use crate::http_client::{ClientOptions, HttpClient};
use crate::model::ImageRef;
use crate::runtime::RegistryAuth;

/// The manifest types a pull accepts.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// Docker Hub's API host, for references without a registry.
const DOCKER_HUB: &str = "registry-1.docker.io";

/// The most bytes of a token answer read.
const MAX_TOKEN_BODY: usize = 1 << 20;

/// Where an image's manifest is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestUrl {
    /// `127.0.0.1:5000`, `ghcr.io`, `registry-1.docker.io`.
    pub host: String,
    /// `https`, or `http` for loopback and `--insecure-registry` hosts.
    pub scheme: &'static str,
    /// The repository inside the registry: `library/nginx`, `acme/api`.
    pub name: String,
    /// The tag or digest.
    pub reference: String,
}

impl ManifestUrl {
    /// The manifest URL of `image`; `insecure` lists hosts spoken to over plain http.
    pub(crate) fn of(image: &ImageRef, insecure: &[String]) -> Self {
        let (host, name) = match image.repository.split_once('/') {
            Some((h, rest)) if h.contains('.') || h.contains(':') || h == "localhost" => {
                (h.to_string(), rest.to_string())
            }
            Some(_) => (DOCKER_HUB.to_string(), image.repository.clone()),
            None => (
                DOCKER_HUB.to_string(),
                format!("library/{}", image.repository),
            ),
        };
        let host = if host == "docker.io" || host == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            host
        };
        let bare = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host);
        let loopback = bare == "localhost"
            || bare == "[::1]"
            || bare
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback());
        let scheme = if loopback || insecure.contains(&host) {
            "http"
        } else {
            "https"
        };
        let reference = match (&image.digest, &image.tag) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        };
        Self {
            host,
            scheme,
            name,
            reference,
        }
    }

    fn url(&self) -> String {
        format!(
            "{}://{}/v2/{}/manifests/{}",
            self.scheme, self.host, self.name, self.reference
        )
    }
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Bearer realm=…,service=…,scope=…`
    Bearer {
        /// The token endpoint.
        realm: String,
        /// `service=`, when given.
        service: Option<String>,
        /// `scope=`, when given.
        scope: Option<String>,
    },
    /// `Basic realm=…`
    Basic,
}

/// Reads a `WWW-Authenticate` value; `None` for schemes a registry does not use.
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = std::collections::HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            val = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.insert(key.trim().to_ascii_lowercase(), val.trim().to_string());
    }
    Some(Challenge::Bearer {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

/// Whether the registry has `image`. Errors say what failed without credentials.
pub(crate) async fn exists(
    image: &ImageRef,
    insecure: &[String],
    auth: Option<&RegistryAuth>,
) -> Result<bool, String> {
    let client = HttpClient::new(&ClientOptions::tcp(std::time::Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let at = ManifestUrl::of(image, insecure);
    let first = head(&client, &at, None).await?;
    let answer = match first.status {
        401 => {
            let challenge = first
                .headers
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            let authorization = match challenge {
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scope,
                }) => {
                    let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", at.name));
                    let token = token(&client, &at, &realm, service, &scope, auth).await?;
                    format!("Bearer {token}")
                }
                Some(Challenge::Basic) => basic(auth.ok_or_else(|| {
                    format!(
                        "{} asks for credentials and the Docker config has none for it; \
                         run `docker login {}`",
                        at.host, at.host
                    )
                })?),
                None => {
                    return Err(format!(
                        "{} answered 401 without a Bearer or Basic challenge",
                        at.host
                    ))
                }
            };
            head(&client, &at, Some(&authorization)).await?
        }
        _ => first,
    };
    match answer.status {
        200 => Ok(true),
        404 => Ok(false),
        401 | 403 => Err(format!(
            "{} refused to show {}:{} ({}): check `docker login {}` and that the \
             repository exists",
            at.host, at.name, at.reference, answer.status, at.host
        )),
        other => Err(format!(
            "{} answered {other} for the manifest of {}:{}",
            at.host, at.name, at.reference
        )),
    }
}

async fn head(
    client: &HttpClient,
    at: &ManifestUrl,
    authorization: Option<&str>,
) -> Result<crate::http_client::Exchange, String> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_TYPES));
    if let Some(a) = authorization {
        let mut value = HeaderValue::from_str(a).map_err(|_| "malformed token".to_string())?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    client
        .exchange(Method::HEAD, &at.url(), headers, 0)
        .await
        .map_err(|e| format!("asking {} for {}:{}: {e}", at.host, at.name, at.reference))
}

fn basic(auth: &RegistryAuth) -> String {
    let raw = format!("{}:{}", auth.username, auth.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A pull token from the challenge's realm, with the stored credentials when there are.
async fn token(
    client: &HttpClient,
    at: &ManifestUrl,
    realm: &str,
    service: Option<String>,
    scope: &str,
    auth: Option<&RegistryAuth>,
) -> Result<String, String> {
    let mut url = reqwest::Url::parse(realm)
        .map_err(|_| format!("{} names a malformed token realm", at.host))?;
    // Credentials go over plain http only to a loopback or insecure registry's realm.
    if url.scheme() != "https" && !(url.scheme() == "http" && at.scheme == "http") {
        return Err(format!(
            "{} sends for tokens to a non-https realm; refused",
            at.host
        ));
    }
    {
        let mut query = url.query_pairs_mut();
        if let Some(s) = &service {
            query.append_pair("service", s);
        }
        query.append_pair("scope", scope);
    }
    let mut headers = HeaderMap::new();
    if let Some(a) = auth {
        let mut value =
            HeaderValue::from_str(&basic(a)).map_err(|_| "malformed credentials".to_string())?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    let answer = client
        .exchange(Method::GET, url.as_str(), headers, MAX_TOKEN_BODY)
        .await
        .map_err(|e| format!("asking {}'s token service: {e}", at.host))?;
    if answer.status != 200 {
        return Err(format!(
            "{}'s token service answered {} (credentials: {}); check `docker login {}`",
            at.host,
            answer.status,
            if auth.is_some() {
                "from the Docker config"
            } else {
                "none"
            },
            at.host
        ));
    }
    let doc: serde_json::Value = serde_json::from_str(&answer.body)
        .map_err(|_| format!("{}'s token service answered no JSON", at.host))?;
    doc.get("token")
        .or_else(|| doc.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("{}'s token service answered no token", at.host))
}
