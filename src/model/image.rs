//! Image references and the pinning rule.

use std::fmt;

/// A parsed image reference: `[registry/]repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ImageRef {
    /// The reference exactly as written.
    pub full: String,
    /// Everything before the tag and digest.
    pub repository: String,
    /// The tag, when one is given.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), when one is given.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and checks a reference; errors say what to write instead.
    pub fn parse(text: &str) -> Result<Self, String> {
        let full = text.trim();
        if full.is_empty() {
            return Err("image is empty; write e.g. `registry.example.com/app:sha-3f2c1e9`".into());
        }
        if full.chars().any(char::is_whitespace) {
            return Err(format!("image `{full}` contains whitespace"));
        }
        let (name, digest) = match full.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (full, None),
        };
        if let Some(d) = &digest {
            let ok = d
                .split_once(':')
                .map(|(alg, hex)| {
                    !alg.is_empty() && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
                })
                .unwrap_or(false);
            if !ok {
                return Err(format!(
                    "image digest `{d}` is malformed; write `@sha256:<64 hex digits>`"
                ));
            }
        }
        let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        let repo_path = match repository.split_once('/') {
            // A first component with a dot, a colon or "localhost" is a registry host.
            Some((host, rest))
                if host.contains('.') || host.contains(':') || host == "localhost" =>
            {
                rest
            }
            _ => repository,
        };
        let repo_ok = !repo_path.is_empty()
            && repo_path.split('/').all(|c| {
                !c.is_empty()
                    && c.chars().all(|ch| {
                        ch.is_ascii_lowercase()
                            || ch.is_ascii_digit()
                            || matches!(ch, '.' | '_' | '-')
                    })
            });
        if !repo_ok {
            return Err(format!(
                "image repository `{repository}` is invalid; use lowercase letters, digits, `.`, `_`, `-` and `/`"
            ));
        }
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(format!(
                    "image tag `{t}` is invalid; a tag is up to 128 letters, digits, `.`, `_`, `-`"
                ));
            }
        }
        Ok(Self {
            full: full.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// True when the reference names one image for good: a digest, or a tag other than
    /// `latest`.
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some() || matches!(&self.tag, Some(t) if t != "latest")
    }

    /// A short form for plans and logs: the tag (a `sha-<40 hex>` tag cut to 7 digits)
    /// or the digest's first 12 digits, with the repository when `with_repo`.
    pub fn short(&self) -> String {
        if let Some(d) = &self.digest {
            let hex = d.split_once(':').map(|x| x.1).unwrap_or(d);
            return format!("@{}", &hex[..hex.len().min(12)]);
        }
        match &self.tag {
            Some(t) => shorten_sha_tag(t),
            None => "latest".into(),
        }
    }
}

fn shorten_sha_tag(tag: &str) -> String {
    match tag.strip_prefix("sha-") {
        Some(hex) if hex.len() > 7 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
            format!("sha-{}", &hex[..7])
        }
        _ => tag.to_string(),
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_port_and_tag() {
        let r = ImageRef::parse("127.0.0.1:5000/team/api:sha-3f2c1e9d0b7a").unwrap();
        assert_eq!(r.repository, "127.0.0.1:5000/team/api");
        assert_eq!(r.tag.as_deref(), Some("sha-3f2c1e9d0b7a"));
        assert!(r.is_pinned());
        assert_eq!(r.short(), "sha-3f2c1e9");
    }

    #[test]
    fn pinning() {
        assert!(!ImageRef::parse("caddy").unwrap().is_pinned());
        assert!(!ImageRef::parse("caddy:latest").unwrap().is_pinned());
        assert!(ImageRef::parse("caddy:2.7-alpine").unwrap().is_pinned());
        let d = format!("caddy@sha256:{}", "a".repeat(64));
        assert!(ImageRef::parse(&d).unwrap().is_pinned());
        let host_only = ImageRef::parse("localhost:5000/caddy").unwrap();
        assert_eq!(host_only.tag, None);
    }

    #[test]
    fn rejects_bad_references() {
        assert!(ImageRef::parse("Caddy:2").is_err());
        assert!(ImageRef::parse("caddy:").is_err());
        assert!(ImageRef::parse("caddy@sha256:xyz").is_err());
    }
}
