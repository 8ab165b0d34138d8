//! Keeps secrets out of everything berth prints: values from env files (decrypted ones
//! included), the text of decrypted secret files, values a compose file took from the
//! host's `.env`, and env values whose names look secret.

use crate::plan::{Desired, EnvFile, SecretFile};

/// Values shorter than this are not treated as secrets: masking every "1" or "on" in
/// berth's output would hide more than it protects.
const MIN_SECRET_LEN: usize = 4;

/// True for env names that conventionally hold secrets.
pub(crate) fn looks_secret(key: &str) -> bool {
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
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Collects the secrets of a desired state.
    pub(crate) fn from_desired(d: &Desired) -> Self {
        // Values interpolated from the host's `.env` of a compose project.
        let mut secrets = d.spec.secrets.clone();
        // A compose job's container reads its own env files.
        for s in d.services.values().chain(d.jobs.values()) {
            if let EnvFile::Loaded(kvs) = &s.env_file {
                secrets.extend(kvs.iter().map(|(_, v)| v.clone()));
            }
            // A decrypted secret file: its text whole, trimmed, and (below) line by line.
            for f in s.secret_files.values().flatten() {
                if let SecretFile::Decrypted(plain) = f {
                    if let Ok(text) = std::str::from_utf8(plain) {
                        secrets.push(text.trim().to_string());
                    }
                }
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

    /// A redactor for the given values. A multi-line value (a PEM key) is also masked
    /// line by line: output that quotes it is often captured a line at a time and joined
    /// (`a | b`), which the whole value would never match.
    pub(crate) fn new(secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .flat_map(|s| {
                let lines: Vec<String> = if s.contains('\n') {
                    s.lines().map(|l| l.trim().to_string()).collect()
                } else {
                    Vec::new()
                };
                std::iter::once(s).chain(lines)
            })
            .collect();
        secrets.retain(|s| s.len() >= MIN_SECRET_LEN);
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// Adds the secrets of `other`: an executor keeps those of every desired state it
    /// applied, so a previous replica's output quoted during a rollback is masked with
    /// the values it was started with.
    pub(crate) fn absorb(&mut self, other: &Redactor) {
        let mut all = std::mem::take(&mut self.secrets);
        all.extend(other.secrets.iter().cloned());
        all.sort();
        all.dedup();
        // Longest first, so a secret containing another is masked whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        self.secrets = all;
    }

    /// The text with every secret masked.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}
