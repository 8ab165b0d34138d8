//! git over ssh as OpenSSH users have it: known_hosts with hashed names, ports,
//! patterns, `@revoked` and `@cert-authority` lines (`known_hosts`), keys with a
//! passphrase and ssh-agents (`auth`), and the callbacks handed to git2 with them.

pub(crate) mod auth;
mod certificate;
pub(crate) mod known_hosts;
mod pattern;
pub(crate) mod remote;

use std::cell::RefCell;
use std::path::Path;

use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

pub(crate) use auth::SshIdentity;
use known_hosts::{fingerprint, lookup_name, KnownHosts};
use remote::SshRemote;

/// Why a callback refused, kept: libgit2 answers a refused host key with its own
/// words ("invalid or unknown remote ssh hostkey"), which say neither which host nor
/// what to do.
pub(crate) type Refusal = RefCell<Option<String>>;

/// What berth offers the remote.
pub(crate) struct Offer<'a> {
    /// The token for https remotes.
    pub token: Option<&'a str>,
    /// The ssh identity.
    pub identity: &'a SshIdentity,
    /// The known_hosts file.
    pub known_hosts: Option<&'a Path>,
}

/// The credential and host-key callbacks for fetching `url`; a refusal's reason is
/// left in `refusal`.
pub(crate) fn callbacks<'a>(
    offer: Offer<'a>,
    url: &str,
    refusal: &'a Refusal,
) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    let remote = remote::parse(url);
    let Offer {
        token,
        identity,
        known_hosts,
    } = offer;
    // What was offered, and what to do when it is refused.
    let mut offered: Option<(String, &str)> = None;
    callbacks.credentials(move |_url, username, allowed| {
        let user = username.unwrap_or("git");
        // libgit2 asks again after a refusal; a second ask would loop forever.
        if let Some((what, hint)) = &offered {
            let message = format!("the server refused {what} for user {user}{hint}");
            *refusal.borrow_mut() = Some(message.clone());
            return Err(git2::Error::from_str(&message));
        }
        if allowed.contains(CredentialType::SSH_KEY) {
            let cred = ssh_credential(identity, user);
            if let Err(e) = &cred {
                *refusal.borrow_mut() = Some(e.message().to_string());
            }
            offered = Some(match identity {
                SshIdentity::KeyFile { key, .. } => (
                    format!("the key {}", key.display()),
                    ": add its public key (the .pub file) as a deploy key of the repository, or check the user in the URL",
                ),
                SshIdentity::Agent { socket } => (
                    format!("every key of the ssh-agent at {}", socket.display()),
                    ": ssh-add -l lists them; add the deploy key with ssh-add KEY",
                ),
                SshIdentity::None => (String::new(), ""),
            });
            return cred;
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Some(token) = token {
                offered = Some(("the token".into(), ""));
                return Cred::userpass_plaintext("x-access-token", token);
            }
        }
        Err(git2::Error::from_str(
            "the remote needs credentials: give --git-token-file for https or --git-ssh-key for ssh",
        ))
    });
    callbacks.certificate_check(move |cert, host| {
        let Some(hostkey) = cert.as_hostkey() else {
            // TLS certificates are checked by libgit2 against the system's roots.
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        match check_host_key(known_hosts, remote.as_ref(), host, hostkey.hostkey()) {
            Ok(how) => {
                tracing::debug!(host, how, "ssh host key accepted");
                Ok(CertificateCheckStatus::CertificateOk)
            }
            Err(message) => {
                *refusal.borrow_mut() = Some(message.clone());
                Err(git2::Error::from_str(&message))
            }
        }
    });
    callbacks
}

fn ssh_credential(identity: &SshIdentity, user: &str) -> Result<Cred, git2::Error> {
    match identity {
        SshIdentity::KeyFile {
            key, passphrase, ..
        } => {
            if passphrase.is_none() && auth::key_is_encrypted(key) == Some(true) {
                return Err(git2::Error::from_str(&format!(
                    "the key {} is encrypted: give its passphrase with --git-ssh-passphrase-file FILE",
                    key.display()
                )));
            }
            Cred::ssh_key(user, None, key, passphrase.as_deref())
        }
        SshIdentity::Agent { .. } => Cred::ssh_key_from_agent(user),
        SshIdentity::None => Err(git2::Error::from_str(
            "the ssh remote needs a key: give --git-ssh-key FILE, or run berth with SSH_AUTH_SOCK naming an ssh-agent that holds the key",
        )),
    }
}

/// Accepts the host key `key` of `host` (on the remote's port) against `known_hosts`,
/// saying how; or says why not.
fn check_host_key(
    known_hosts: Option<&Path>,
    remote: Option<&SshRemote>,
    host: &str,
    key: Option<&[u8]>,
) -> Result<&'static str, String> {
    let Some(key) = key else {
        return Err("the ssh server sent no host key".into());
    };
    let port = remote.map_or(22, |r| r.port);
    let Some(path) = known_hosts else {
        return Err(format!(
            "ssh remotes need --git-known-hosts FILE to check the server's key ({} {}); after checking the fingerprint with the server's operator: ssh-keyscan -p {port} {host} > FILE",
            lookup_name(host, port),
            fingerprint(key)
        ));
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let accepted = KnownHosts::read(path)?
        .check(host, port, key, now)
        .map_err(|e| e.to_string())?;
    Ok(match accepted {
        known_hosts::Accepted::Key { .. } => "listed key",
        known_hosts::Accepted::Certificate { .. } => "host certificate of a listed CA",
    })
}

/// A clearer reason for what libssh2 says when a key cannot be read.
pub(crate) fn explain(identity: &SshIdentity, message: &str) -> Option<String> {
    let SshIdentity::KeyFile {
        key,
        passphrase_file,
        ..
    } = identity
    else {
        return None;
    };
    // libssh2 says "Wrong passphrase" with some keys, and only "Unable to extract
    // public key from private key" with an OpenSSH-format key it cannot decrypt.
    if !(message.contains("Wrong passphrase") || message.contains("public key from private key")) {
        return None;
    }
    Some(match passphrase_file {
        Some(file) => format!(
            "the key {} could not be read with the passphrase in {}: the passphrase is wrong, or the file is not a private key (ssh-keygen -y -f {} checks both)",
            key.display(),
            file.display(),
            key.display()
        ),
        None => format!(
            "the key {} could not be read: it is encrypted (give --git-ssh-passphrase-file) or not a private key (ssh-keygen -y -f {} checks)",
            key.display(),
            key.display()
        ),
    })
}

#[cfg(test)]
mod tests;
