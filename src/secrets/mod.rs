//! Secrets committed to the repository, encrypted to each host: age files
//! (<https://age-encryption.org/v1>, binary or armored) whose names end in `.age`.
//!
//! A host decrypts with its own identity (`--age-identity`: X25519 identity files as
//! `age-keygen` writes them, or unencrypted ssh-ed25519 / ssh-rsa private keys), in
//! memory: env values go to the container's environment; secret files are written only to
//! a tmpfs ([`runtime`]). A file that does not decrypt fails its service, naming the file
//! and this host's recipient; the ciphertext is never handed on in its place.
//!
//! People encrypt to every recipient of the repository's `.berth/recipients`
//! ([`recipients`]); `berth secrets edit` and `rekey` do it, and the files stay readable
//! by the `age` command-line tool both ways.

#[cfg(test)]
mod plan_tests;
pub(crate) mod recipients;
pub(crate) mod runtime;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest `.age` file berth decrypts, and the most plaintext it takes out of one:
/// env files and secret files hold settings and keys, not data. An age payload is not
/// compressed, so a file within the limit cannot unfold into much more; the plaintext is
/// still read no further than the limit.
pub const MAX_SEALED_BYTES: usize = 1 << 20;

/// The largest identity file read.
const MAX_IDENTITY_BYTES: u64 = 64 << 10;

/// True for a path that names an age file.
pub fn is_sealed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "age")
}

/// The identities a host (or a person) decrypts with, and the recipients that match
/// them, for messages and `berth secrets recipients`.
#[derive(Clone, Default)]
pub struct HostKeys {
    identities: Arc<Vec<Box<dyn age::Identity + Send + Sync>>>,
    recipients: Arc<Vec<String>>,
}

impl std::fmt::Debug for HostKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The recipients are public; the identities are never shown.
        f.debug_struct("HostKeys")
            .field("recipients", &self.recipients)
            .finish()
    }
}

impl PartialEq for HostKeys {
    fn eq(&self, other: &Self) -> bool {
        self.recipients == other.recipients
    }
}

impl Eq for HostKeys {}

impl HostKeys {
    /// Reads the identity files in `paths` (none: a host without identities, on which
    /// every `.age` file fails its service).
    pub fn load(paths: &[PathBuf]) -> Result<Self, String> {
        let mut identities: Vec<Box<dyn age::Identity + Send + Sync>> = Vec::new();
        let mut recipients = Vec::new();
        for path in paths {
            let shown = path.display();
            let mut text = String::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_IDENTITY_BYTES).read_to_string(&mut text))
                .map_err(|e| format!("age identity {shown}: {e}"))?;
            if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
                let (identity, recipient) = ssh_identity(&text, &shown.to_string())?;
                identities.push(identity);
                recipients.push(recipient);
                continue;
            }
            let before = identities.len();
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                // The line is never quoted back: it is a private key.
                let key: age::x25519::Identity = line.parse().map_err(|_| {
                    format!(
                        "age identity {shown}: line {} is not an age identity (AGE-SECRET-KEY-1…, as age-keygen writes) nor is the file an OpenSSH private key",
                        i + 1
                    )
                })?;
                recipients.push(key.to_public().to_string());
                identities.push(Box::new(key));
            }
            if identities.len() == before {
                return Err(format!(
                    "age identity {shown} holds no identity; make one with `age-keygen -o {shown}`"
                ));
            }
        }
        Ok(Self {
            identities: Arc::new(identities),
            recipients: Arc::new(recipients),
        })
    }

    /// The recipients of these identities: what `.berth/recipients` must list.
    pub fn recipients(&self) -> &[String] {
        &self.recipients
    }

    /// True when there is no identity at all.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// The recipients as one phrase for messages.
    fn shown_recipients(&self) -> String {
        match self.recipients.as_slice() {
            [] => "none".to_string(),
            [one] => one.clone(),
            many => many.join(", "),
        }
    }

    /// Decrypts the age file `data` (binary or armored) that `shown` names. Errors say
    /// which file, why, this host's recipient and what to do; never a byte of content.
    pub fn decrypt(&self, shown: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        if data.len() > MAX_SEALED_BYTES {
            return Err(format!(
                "{shown} is larger than {} KiB; encrypted files hold settings and keys, not data",
                MAX_SEALED_BYTES >> 10
            ));
        }
        if self.is_empty() {
            return Err(format!(
                "{shown} is encrypted (age) and this host has no identity to decrypt it; start berth with --age-identity FILE (BERTH_AGE_IDENTITY)"
            ));
        }
        let reader = age::armor::ArmoredReader::new(data);
        let decryptor = age::Decryptor::new(reader)
            .map_err(|e| format!("{shown} is not a readable age file ({e}); it may be corrupted or truncated: encrypt it again with `berth secrets edit`"))?;
        let stream = decryptor
            .decrypt(self.identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => format!(
                    "{shown} is not encrypted to this host (its recipient: {}); add that line to .berth/recipients and run `berth secrets rekey`",
                    self.shown_recipients()
                ),
                other => format!(
                    "{shown} does not decrypt ({other}); it may be corrupted: encrypt it again with `berth secrets edit`"
                ),
            })?;
        let mut plain = Vec::new();
        stream
            .take(MAX_SEALED_BYTES as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| {
                format!("{shown} does not decrypt ({e}); it may be truncated or corrupted: encrypt it again with `berth secrets edit`")
            })?;
        if plain.len() > MAX_SEALED_BYTES {
            return Err(format!(
                "{shown} decrypts to more than {} KiB; encrypted files hold settings and keys, not data",
                MAX_SEALED_BYTES >> 10
            ));
        }
        Ok(plain)
    }
}

/// An unencrypted OpenSSH private key as an age identity, with its recipient line.
fn ssh_identity(
    text: &str,
    shown: &str,
) -> Result<(Box<dyn age::Identity + Send + Sync>, String), String> {
    let identity = age::ssh::Identity::from_buffer(text.as_bytes(), Some(shown.to_string()))
        .map_err(|e| format!("age identity {shown}: {e}"))?;
    match &identity {
        age::ssh::Identity::Unencrypted(_) => {}
        age::ssh::Identity::Encrypted(_) => {
            return Err(format!(
                "age identity {shown} is protected by a passphrase; berth decrypts unattended: give it a key without one (mode 600, readable by root only)"
            ))
        }
        age::ssh::Identity::Unsupported(_) => {
            return Err(format!(
                "age identity {shown} is an ssh key of a kind age does not support; use ssh-ed25519, ssh-rsa, or `age-keygen`"
            ))
        }
    }
    let recipient = age::ssh::Recipient::try_from(identity.clone())
        .map_err(|e| format!("age identity {shown}: {e:?}"))?;
    Ok((Box::new(identity), recipient.to_string()))
}
