//! Keeps secrets out of everything berth prints: values from env files, and env values
//! whose names look secret.

use crate::plan::{Desired, EnvFile};

/// Values shorter than this are not treated as secrets: masking every "1" or "on" in
/// berth's output would hide more than it protects.
const MIN_SECRET_LEN: usize = 4;

/// True for env names that conventionally hold secrets.
pub fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    k.ends_with("_KEY")
        || k.ends_with("_SECRET")
        || k.contains("PASSWORD")
        || k.contains("TOKEN")
        || k == "DATABASE_URL"
        || k == "SECRET"
}

/// Replaces known secret values with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Collects the secrets of a desired state.
    pub fn from_desired(d: &Desired) -> Self {
        let mut secrets = Vec::new();
        for s in d.services.values() {
            if let EnvFile::Loaded(kvs) = &s.env_file {
                secrets.extend(kvs.iter().map(|(_, v)| v.clone()));
            }
            secrets.extend(
                s.spec
                    .env
                    .iter()
                    .filter(|(k, _)| looks_secret(k))
                    .map(|(_, v)| v.clone()),
            );
        }
        Self::new(secrets)
    }

    /// A redactor for the given values.
    pub fn new(mut secrets: Vec<String>) -> Self {
        secrets.retain(|s| s.len() >= MIN_SECRET_LEN);
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// The text with every secret masked.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for k in [
            "API_KEY",
            "AWS_SECRET",
            "DB_PASSWORD",
            "GITHUB_TOKEN",
            "DATABASE_URL",
        ] {
            assert!(looks_secret(k), "{k}");
        }
        for k in ["LOG_FORMAT", "PORT", "KEYBOARD"] {
            assert!(!looks_secret(k), "{k}");
        }
    }

    #[test]
    fn masks_longest_first_and_skips_tiny_values() {
        let r = Redactor::new(vec!["s3cr3t".into(), "s3cr3t-extended".into(), "on".into()]);
        assert_eq!(r.redact("a s3cr3t-extended b s3cr3t on"), "a *** b *** on");
    }
}
