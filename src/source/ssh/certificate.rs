//! Host certificates as the server presents them (PROTOCOL.certkeys), decoded with
//! ssh-key. ssh-key 0.6 refuses a validity bound past `i64::MAX`, yet `ssh-keygen -s`
//! without `-V` writes `u64::MAX` ("forever"): the window is read here, the rest
//! decoded from a copy with the bounds clamped, and the CA's signature verified over
//! the original bytes.

use signature::Verifier as _;
use ssh_key::Certificate;

/// A decoded certificate and what ssh-key cannot hold of it.
pub(crate) struct HostCertificate {
    /// The fields (its validity bounds clamped: use the ones below).
    pub cert: Certificate,
    /// Valid from this Unix time on.
    pub valid_after: u64,
    /// Valid before this Unix time (`u64::MAX`: forever).
    pub valid_before: u64,
    /// The bytes the CA signed.
    signed: Vec<u8>,
}

/// Reads SSH wire fields.
struct Wire<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl Wire<'_> {
    fn take(&mut self, n: usize) -> Option<usize> {
        let start = self.at;
        let end = start.checked_add(n)?;
        (end <= self.bytes.len()).then(|| {
            self.at = end;
            start
        })
    }

    fn u64(&mut self) -> Option<(usize, u64)> {
        let at = self.take(8)?;
        let v = u64::from_be_bytes(self.bytes[at..at + 8].try_into().ok()?);
        Some((at, v))
    }

    fn string(&mut self) -> Option<&[u8]> {
        let at = self.take(4)?;
        let len = u32::from_be_bytes(self.bytes[at..at + 4].try_into().ok()?) as usize;
        let start = self.take(len)?;
        Some(&self.bytes[start..start + len])
    }
}

/// How many wire strings (mpints included) hold the certified key of each type.
fn key_fields(cert_type: &[u8]) -> Option<usize> {
    Some(match cert_type {
        b"ssh-ed25519-cert-v01@openssh.com" => 1,
        b"sk-ssh-ed25519-cert-v01@openssh.com" => 2,
        b"ssh-rsa-cert-v01@openssh.com" => 2,
        b"ecdsa-sha2-nistp256-cert-v01@openssh.com"
        | b"ecdsa-sha2-nistp384-cert-v01@openssh.com"
        | b"ecdsa-sha2-nistp521-cert-v01@openssh.com" => 2,
        b"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com" => 3,
        b"ssh-dss-cert-v01@openssh.com" => 4,
        _ => return None,
    })
}

/// The certificate in `blob`, or `None` when it is a plain key (or unreadable).
pub(crate) fn decode(blob: &[u8]) -> Option<HostCertificate> {
    let mut wire = Wire { bytes: blob, at: 0 };
    let fields = key_fields(wire.string()?)?;
    wire.string()?; // nonce
    for _ in 0..fields {
        wire.string()?;
    }
    wire.u64()?; // serial
    wire.take(4)?; // type
    wire.string()?; // key id
    wire.string()?; // principals
    let (after_at, valid_after) = wire.u64()?;
    let (before_at, valid_before) = wire.u64()?;
    for _ in 0..4 {
        wire.string()?; // critical options, extensions, reserved, signature key
    }
    let signed = blob[..wire.at].to_vec();
    wire.string()?; // signature
    if wire.at != blob.len() {
        return None;
    }
    let mut clamped = blob.to_vec();
    for (at, v) in [(after_at, valid_after), (before_at, valid_before)] {
        let v = v.min(i64::MAX as u64);
        clamped[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }
    Some(HostCertificate {
        cert: Certificate::from_bytes(&clamped).ok()?,
        valid_after,
        valid_before,
        signed,
    })
}

impl HostCertificate {
    /// True when the signature verifies with the certificate's signature key.
    pub(crate) fn signature_verifies(&self) -> bool {
        self.cert
            .signature_key()
            .verify(&self.signed, self.cert.signature())
            .is_ok()
    }
}
