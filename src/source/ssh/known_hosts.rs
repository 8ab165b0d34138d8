//! known_hosts as OpenSSH writes and reads it (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"):
//! plain and `[host]:port` names, comma-separated lists with `*`, `?` and `!`, hashed
//! names (`|1|salt|HMAC-SHA1(salt, name)`), `@revoked` keys and `@cert-authority` keys
//! that vouch for host certificates.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use ssh_key::{Fingerprint, HashAlg, PublicKey};

use super::certificate::{self, HostCertificate};

use super::pattern::{match_list, ListMatch};

/// What a line says about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marker {
    /// The host's own key.
    Key,
    /// `@cert-authority`: a CA whose host certificates are trusted for the hosts.
    CertAuthority,
    /// `@revoked`: a key never accepted for the hosts.
    Revoked,
}

/// The names of a line.
#[derive(Debug, Clone)]
enum Hosts {
    /// `|1|salt|hash`: one name, hidden.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// A comma-separated list of patterns.
    Patterns(String),
}

/// One line of the file.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    marker: Marker,
    hosts: Hosts,
    key_type: String,
    blob: Vec<u8>,
}

/// A parsed known_hosts file.
#[derive(Debug, Clone)]
pub(crate) struct KnownHosts {
    path: String,
    entries: Vec<Entry>,
}

/// How a host key was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// The key is listed for the host, at this line.
    Key { line: usize },
    /// The host presented a certificate signed by the CA listed at this line.
    Certificate { line: usize },
}

/// Why a host key was refused. Every message names the host, the key's fingerprint
/// and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostKeyError {
    /// No line lists the host with this key.
    #[error("host key of {name} ({key}) is not in {path}{also}; check the fingerprint with the server's operator, then add it: ssh-keyscan {scan_args} >> {path}")]
    Unknown {
        /// The name looked up: `host` or `[host]:port`.
        name: String,
        /// The presented key's type and `SHA256:…` fingerprint.
        key: String,
        /// The file.
        path: String,
        /// What else was found (another key type, a refused certificate).
        also: String,
        /// `-p PORT host` or `host`.
        scan_args: String,
    },
    /// The host is listed with another key of the same type.
    #[error("host key of {name} has CHANGED: the server presented {key_type} {fingerprint}, but {path} line {line} lists another {key_type} key for it; someone may be intercepting the connection. If the server's key was really replaced, remove the old line (ssh-keygen -R '{name}' -f {path}) and add the new one after checking its fingerprint")]
    Changed {
        /// The name looked up.
        name: String,
        /// The key's type.
        key_type: String,
        /// `SHA256:…` of the presented key.
        fingerprint: String,
        /// The file.
        path: String,
        /// The line listing the other key.
        line: usize,
    },
    /// The key (or the certificate's key or CA) is marked `@revoked`.
    #[error("host key of {name} ({fingerprint}) is REVOKED by {path} line {line}; it is never accepted: ask the server's operator for its new key")]
    Revoked {
        /// The name looked up.
        name: String,
        /// `SHA256:…` of the revoked key.
        fingerprint: String,
        /// The file.
        path: String,
        /// The `@revoked` line.
        line: usize,
    },
}

/// `SHA256:…` of a public key blob, as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// The key type named at the start of a key blob (an SSH string).
fn blob_type(blob: &[u8]) -> String {
    let Some(len) = blob.get(..4) else {
        return "unknown".into();
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    blob.get(4..4usize.saturating_add(len))
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or("unknown")
        .to_string()
}

/// The name a host is looked up by: `host` on port 22, `[host]:port` otherwise.
pub(crate) fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

fn parse_line(line: usize, text: &str) -> Result<Option<Entry>, String> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let mut fields = text.split_whitespace();
    let mut first = fields.next().unwrap_or_default();
    let marker = match first {
        "@cert-authority" => Marker::CertAuthority,
        "@revoked" => Marker::Revoked,
        m if m.starts_with('@') => {
            return Err(format!(
                "unknown marker `{m}` (known: @cert-authority, @revoked)"
            ))
        }
        _ => Marker::Key,
    };
    if marker != Marker::Key {
        first = fields
            .next()
            .ok_or("a host list is missing after the marker")?;
    }
    let (Some(key_type), Some(b64)) = (fields.next(), fields.next()) else {
        return Err("expected `[marker] hosts keytype base64-key [comment]`".into());
    };
    let blob = STANDARD
        .decode(b64)
        .map_err(|e| format!("the key is not valid base64: {e}"))?;
    if blob_type(&blob) != key_type {
        return Err(format!(
            "the key's type is {}, but the line says {key_type}",
            blob_type(&blob)
        ));
    }
    let hosts = if let Some(hashed) = first.strip_prefix("|1|") {
        let (salt, hash) = hashed
            .split_once('|')
            .ok_or("a hashed name is `|1|salt|hash`")?;
        let salt = STANDARD
            .decode(salt)
            .map_err(|e| format!("the hashed name's salt is not valid base64: {e}"))?;
        let hash = STANDARD
            .decode(hash)
            .map_err(|e| format!("the hashed name's hash is not valid base64: {e}"))?;
        if salt.len() != 20 || hash.len() != 20 {
            return Err("a hashed name's salt and hash are 20 bytes each".into());
        }
        Hosts::Hashed { salt, hash }
    } else if first.starts_with('|') {
        return Err("unknown hashed name format (only |1| is known)".into());
    } else {
        Hosts::Patterns(first.to_string())
    };
    Ok(Some(Entry {
        line,
        marker,
        hosts,
        key_type: key_type.to_string(),
        blob,
    }))
}

impl Entry {
    /// True when the line names `name` (already `[host]:port` when not on port 22).
    fn names(&self, name: &str) -> bool {
        match &self.hosts {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(list) => match_list(name, list) == ListMatch::Yes,
        }
    }
}

impl KnownHosts {
    /// Parses the text of a known_hosts file; `path` names it in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(entry) = parse_line(i + 1, line)
                .map_err(|e| format!("known_hosts {}:{}: {e}", path.display(), i + 1))?
            {
                entries.push(entry);
            }
        }
        Ok(Self {
            path: path.display().to_string(),
            entries,
        })
    }

    /// Reads and parses a known_hosts file.
    pub(crate) fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("known_hosts {}: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    fn matching<'s>(&'s self, name: &'s str, marker: Marker) -> impl Iterator<Item = &'s Entry> {
        self.entries
            .iter()
            .filter(move |e| e.marker == marker && e.names(name))
    }

    /// Checks the key (or host certificate) `presented` by `host` on `port` at the
    /// Unix time `now`.
    pub(crate) fn check(
        &self,
        host: &str,
        port: u16,
        presented: &[u8],
        now: u64,
    ) -> Result<Accepted, HostKeyError> {
        let name = lookup_name(host, port);
        let cert = certificate::decode(presented);
        // The certificate's own key, which a plain line may list.
        let plain = match &cert {
            Some(c) => PublicKey::from(c.cert.public_key().clone())
                .to_bytes()
                .unwrap_or_default(),
            None => presented.to_vec(),
        };
        let mut suspects = vec![presented.to_vec(), plain.clone()];
        if let Some(c) = &cert {
            if let Ok(ca) = PublicKey::from(c.cert.signature_key().clone()).to_bytes() {
                suspects.push(ca);
            }
        }
        let revoked = self
            .matching(&name, Marker::Revoked)
            .find(|r| suspects.contains(&r.blob))
            .map(|r| (r.line, fingerprint(&r.blob)));
        if let Some((line, fingerprint)) = revoked {
            return Err(HostKeyError::Revoked {
                name,
                fingerprint,
                path: self.path.clone(),
                line,
            });
        }
        let mut also = String::new();
        if let Some(cert) = &cert {
            match self.check_certificate(cert, host, &name, now) {
                Ok(line) => return Ok(Accepted::Certificate { line }),
                // As OpenSSH does, a certificate no CA vouches for falls back to its key.
                Err(why) => also = format!(" (the server's host certificate was refused: {why})"),
            }
        }
        let key_type = blob_type(&plain);
        let mut changed = None;
        let mut other_types = Vec::new();
        for entry in self.matching(&name, Marker::Key) {
            if entry.blob == plain {
                return Ok(Accepted::Key { line: entry.line });
            }
            if entry.key_type == key_type {
                changed.get_or_insert(entry.line);
            } else {
                other_types.push(entry.key_type.clone());
            }
        }
        if let Some(line) = changed {
            return Err(HostKeyError::Changed {
                name,
                key_type,
                fingerprint: fingerprint(&plain),
                path: self.path.clone(),
                line,
            });
        }
        if !other_types.is_empty() {
            other_types.dedup();
            also.push_str(&format!(
                " (it lists only other key types for this host: {})",
                other_types.join(", ")
            ));
        }
        let host = host.to_ascii_lowercase();
        Err(HostKeyError::Unknown {
            scan_args: if port == 22 {
                host
            } else {
                format!("-p {port} {host}")
            },
            name,
            key: format!("{key_type} {}", fingerprint(&plain)),
            path: self.path.clone(),
            also,
        })
    }

    /// The line of the CA that vouches for `cert` as `host`'s certificate, or why none.
    fn check_certificate(
        &self,
        presented: &HostCertificate,
        host: &str,
        name: &str,
        now: u64,
    ) -> Result<usize, String> {
        let cert = &presented.cert;
        let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
        let cas: Vec<(&Entry, Fingerprint)> = self
            .matching(name, Marker::CertAuthority)
            .filter_map(|e| {
                let key = PublicKey::from_bytes(&e.blob).ok()?;
                Some((e, key.key_data().fingerprint(HashAlg::Sha256)))
            })
            .collect();
        if cas.is_empty() {
            return Err(format!(
                "no @cert-authority line names {name}; it is signed by {signer}"
            ));
        }
        if !cert.cert_type().is_host() {
            return Err("it is a user certificate, not a host certificate".into());
        }
        let Some((ca, _)) = cas.iter().find(|(_, f)| *f == signer) else {
            return Err(format!(
                "it is signed by {signer}, which no @cert-authority line for {name} lists"
            ));
        };
        if !presented.signature_verifies() {
            return Err("its signature does not verify".into());
        }
        if now < presented.valid_after || now >= presented.valid_before {
            return Err(format!(
                "it is valid only from {} to {} (Unix time), and now is {now}",
                presented.valid_after, presented.valid_before
            ));
        }
        // Host certificates have no critical options: an unknown one is refused.
        if !cert.critical_options().is_empty() {
            return Err("it carries critical options, which host certificates do not have".into());
        }
        let host = host.to_ascii_lowercase();
        if !cert
            .valid_principals()
            .iter()
            .any(|p| super::pattern::matches(&host, p))
        {
            return Err(format!(
                "its principals ({}) do not include {host}",
                cert.valid_principals().join(", ")
            ));
        }
        Ok(ca.line)
    }
}

#[cfg(test)]
mod tests;
