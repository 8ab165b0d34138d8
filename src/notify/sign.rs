//! Signing `json` notifications: HMAC-SHA256 of `<timestamp>.<body>` with a secret of
//! the host, so that a receiver can check who sent an event and refuse a replayed one.
//!
//! Headers sent with every attempt (the timestamp is the attempt's own):
//! `X-Berth-Timestamp: <unix seconds>` and
//! `X-Berth-Signature-256: sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header holding the signature.
pub(crate) const SIGNATURE_HEADER: &str = "x-berth-signature-256";
/// The header holding the signed timestamp.
pub(crate) const TIMESTAMP_HEADER: &str = "x-berth-timestamp";

/// The shortest secret accepted: a guessable secret would sign nothing.
const MIN_SECRET: usize = 16;

/// The HMAC secret: never printed, in `Debug` either.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// Reads the secret from a file: its content without surrounding whitespace.
    /// Errors name the file and what to do, never the content.
    pub(crate) fn from_file(path: &Path) -> Result<Secret, String> {
        let shown = path.display();
        let raw = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
        let text = String::from_utf8(raw).map_err(|_| {
            format!("{shown} is not UTF-8 text; write a random text secret (e.g. `openssl rand -hex 32`)")
        })?;
        let secret = text.trim();
        if secret.len() < MIN_SECRET {
            return Err(format!(
                "{shown} holds {} byte(s); a notification secret needs at least {MIN_SECRET}: write a long random one (e.g. `openssl rand -hex 32`)",
                secret.len()
            ));
        }
        Ok(Secret(secret.as_bytes().to_vec()))
    }

    #[cfg(test)]
    pub(crate) fn new(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    /// The two headers for one attempt at `unix_time`, as (name, value) pairs.
    pub(crate) fn headers(&self, unix_time: u64, body: &[u8]) -> [(&'static str, String); 2] {
        let timestamp = unix_time.to_string();
        [
            (TIMESTAMP_HEADER, timestamp.clone()),
            (SIGNATURE_HEADER, signature(&self.0, &timestamp, body)),
        ]
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`.
pub(crate) fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The time of an attempt, in seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
