//! Verification of SSH-signed commits.
//!
//! berth applies only commits whose SSH signature, in the `git` namespace that
//! `git commit -S` uses with `gpg.format=ssh`, was made by a key listed in an
//! allowed-signers file. The file is the one git reads through
//! `gpg.ssh.allowedSignersFile` (ALLOWED SIGNERS in `ssh-keygen(1)`), so an
//! operator keeps a single list for both.
//!
//! The outcome matches `git verify-commit` with that file, with these
//! differences:
//!
//! - A `cert-authority` line makes the whole file fail to load. berth checks
//!   signatures made by plain keys only, and skipping such a line would let an
//!   operator believe the certificate authority is trusted.
//! - `valid-after` and `valid-before` times are read as UTC, with or without a
//!   trailing `Z`; ssh-keygen reads a time without `Z` in the local time zone.
//!   Like git, they are compared with the commit's committer time, and both
//!   bounds are inclusive.
//! - A key listed on several lines is allowed when any of its lines allows it
//!   (namespace and time), and the signer is named after the first such line.
//!   git names the signer after the first line listing the key and, when that
//!   line restricts the key, rejects the commit even if a later line allows it.

mod allowed_signers;

use std::fmt;

use ssh_key::{Algorithm, EcdsaCurve, HashAlg, PublicKey, SshSig};

pub(crate) use allowed_signers::AllowedSigners;

/// The SSHSIG namespace git signs commits in.
const GIT_NAMESPACE: &str = "git";

/// The line that opens an SSH signature block.
const SSH_ARMOR: &str = "-----BEGIN SSH SIGNATURE-----";

/// The outcome of checking one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    /// Signed by an allowed key.
    Valid {
        /// The first principal of the allowed-signers line that accepted the
        /// key: the name `git verify-commit` gives the signer.
        principal: String,
        /// The signing key's fingerprint, `SHA256:…`.
        fingerprint: String,
    },
    /// The commit carries no signature.
    Unsigned,
    /// Signed, but not by an allowed key (or the key is not allowed for namespace git / at that time).
    UnknownKey {
        /// The signing key's fingerprint, `SHA256:…`.
        fingerprint: String,
    },
    /// A signature that does not verify, or is not an SSH signature (e.g. a GPG one), with why.
    Invalid(String),
}

impl SignatureCheck {
    /// Whether the commit may be applied: signed by an allowed key.
    pub(crate) fn is_valid(&self) -> bool {
        matches!(self, Self::Valid { .. })
    }
}

impl fmt::Display for SignatureCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Valid {
                principal,
                fingerprint,
            } => write!(f, "signed by {principal} ({fingerprint})"),
            Self::Unsigned => f.write_str("unsigned"),
            Self::UnknownKey { fingerprint } => write!(
                f,
                "signed by a key not in the allowed signers ({fingerprint}); if it should be, \
                 list it there, allowed for namespace \"git\" at the commit's date"
            ),
            Self::Invalid(why) => write!(f, "bad signature: {why}"),
        }
    }
}

/// Checks the signature of commit `oid` in `repo` against `allowed`.
///
/// The signature must be an SSH signature in namespace `git` that verifies
/// against the commit's content, made by a key that a line of `allowed` lets
/// sign in namespace `git` at the commit's committer time.
pub(crate) fn verify_commit(
    repo: &git2::Repository,
    oid: git2::Oid,
    allowed: &AllowedSigners,
) -> SignatureCheck {
    // Looked up first so that a missing commit is not taken for an unsigned
    // one: both make `extract_signature` fail with `NotFound`.
    let committed_at = match repo.find_commit(oid) {
        Ok(commit) => commit.committer().when().seconds(),
        Err(err) => {
            return SignatureCheck::Invalid(format!(
                "cannot read commit {oid}: {}; fetch the branch again",
                err.message()
            ))
        }
    };
    match repo.extract_signature(&oid, None) {
        Ok((signature, payload)) => check_signature(&signature, &payload, committed_at, allowed),
        Err(err) if err.code() == git2::ErrorCode::NotFound => SignatureCheck::Unsigned,
        Err(err) => SignatureCheck::Invalid(format!(
            "cannot read the signature of commit {oid}: {}",
            err.message()
        )),
    }
}

/// Whether signatures by keys of this type can be verified (the key types the
/// `ssh-key` crate is built to verify).
fn can_verify(algorithm: &Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::Ed25519
            | Algorithm::SkEd25519
            | Algorithm::Rsa { .. }
            | Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256
            }
            | Algorithm::SkEcdsaSha2NistP256
    )
}

/// Checks a commit's signature block against its signed payload.
fn check_signature(
    signature: &[u8],
    payload: &[u8],
    committed_at: i64,
    allowed: &AllowedSigners,
) -> SignatureCheck {
    let armor = String::from_utf8_lossy(signature);
    let armor = armor.trim();
    if !armor.starts_with(SSH_ARMOR) {
        let kind = if armor.starts_with("-----BEGIN PGP SIGNATURE-----") {
            "a GPG signature"
        } else if armor.starts_with("-----BEGIN SIGNED MESSAGE-----") {
            "an X.509 signature"
        } else {
            "an unrecognised signature"
        };
        return SignatureCheck::Invalid(format!(
            "{kind}, not an SSH one: sign commits with an SSH key (git config gpg.format ssh)"
        ));
    }
    let sshsig = match SshSig::from_pem(armor) {
        Ok(sshsig) => sshsig,
        Err(err) => return SignatureCheck::Invalid(format!("malformed SSH signature: {err}")),
    };
    let key = sshsig.public_key();
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();

    // A signature made for another purpose (another namespace) must never
    // pass as a commit signature, whoever made it.
    if sshsig.namespace() != GIT_NAMESPACE {
        return SignatureCheck::Invalid(format!(
            "made by {fingerprint} for namespace \"{}\", not \"{GIT_NAMESPACE}\", \
             so it is not a commit signature; re-sign the commit with git",
            sshsig.namespace()
        ));
    }
    // Said apart from a failed verification, which would otherwise suggest
    // the commit was altered.
    if !can_verify(&key.algorithm()) {
        return SignatureCheck::Invalid(format!(
            "made with an {} key ({fingerprint}), which berth cannot check: \
             sign with an ed25519, ecdsa-sha2-nistp256 or rsa key",
            key.algorithm()
        ));
    }
    // Verified before the key is looked up, as ssh-keygen does: a forged
    // signature is reported as bad even when it names an unknown key.
    if let Err(err) = PublicKey::from(key.clone()).verify(GIT_NAMESPACE, payload, &sshsig) {
        return SignatureCheck::Invalid(format!(
            "the signature by {fingerprint} does not verify against the commit's content \
             ({err}): the commit was changed after it was signed, or the signature is corrupt"
        ));
    }

    match allowed
        .signers
        .iter()
        .find(|signer| signer.key == *key && signer.allows(GIT_NAMESPACE, committed_at))
    {
        Some(signer) => SignatureCheck::Valid {
            principal: signer.first_principal().to_owned(),
            fingerprint,
        },
        None => SignatureCheck::UnknownKey { fingerprint },
    }
}

#[cfg(test)]
mod tests;
