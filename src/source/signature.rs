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

use std::fmt;
use std::path::Path;

use ssh_key::public::KeyData;
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, PublicKey, SshSig};

/// The SSHSIG namespace git signs commits in.
const GIT_NAMESPACE: &str = "git";

/// The line that opens an SSH signature block.
const SSH_ARMOR: &str = "-----BEGIN SSH SIGNATURE-----";

/// How a line of the file is written, repeated in errors so they say how to fix it.
const LINE_FORMAT: &str = "PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]";

/// Keys allowed to sign the commits berth applies.
///
/// Read from a file in git's `gpg.ssh.allowedSignersFile` format: one signer a
/// line, `PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]`, with blank lines
/// and lines starting with `#` ignored. The options understood are
/// `namespaces="…"`, `valid-after="…"` and `valid-before="…"`; a
/// `cert-authority` line is refused.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    signers: Vec<Signer>,
}

/// One line of an allowed-signers file.
#[derive(Debug, Clone)]
struct Signer {
    /// The principals field as written (comma-separated); its first entry
    /// names the signer, as `git verify-commit` does.
    principals: String,
    key: KeyData,
    /// Pattern list of the namespaces the key may sign in; `None` allows all.
    namespaces: Option<String>,
    /// Earliest committer time (Unix seconds) the key is valid for.
    valid_after: Option<i64>,
    /// Latest committer time (Unix seconds) the key is valid for.
    valid_before: Option<i64>,
}

impl Signer {
    /// The first principal listed (parsing guarantees there is one).
    fn first_principal(&self) -> &str {
        self.principals
            .split(',')
            .find(|principal| !principal.is_empty())
            .unwrap_or_default()
    }

    /// Whether this line lets its key sign in `namespace` at Unix time `time`.
    fn allows(&self, namespace: &str, time: i64) -> bool {
        self.namespaces
            .as_deref()
            .is_none_or(|list| match_pattern_list(namespace, list))
            && self.valid_after.is_none_or(|after| time >= after)
            && self.valid_before.is_none_or(|before| time <= before)
    }
}

impl AllowedSigners {
    /// Reads an allowed-signers file.
    ///
    /// Errors name the file, and the line for a line that cannot be read. An
    /// empty file loads as an empty list, which no commit passes; see
    /// [`AllowedSigners::is_empty`].
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "allowed signers file {} does not exist: create it with one line per signer, \
                     `{LINE_FORMAT}` (the format of git's gpg.ssh.allowedSignersFile)",
                    path.display()
                )
            } else {
                format!(
                    "cannot read allowed signers file {}: {err}: make it a readable UTF-8 text file",
                    path.display()
                )
            }
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of an allowed-signers file; `origin` names it in errors,
    /// which read `origin:line: what is wrong and how to fix it`.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let mut signers = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let parsed =
                parse_line(line).map_err(|err| format!("{origin}:{}: {err}", index + 1))?;
            signers.extend(parsed);
        }
        Ok(Self { signers })
    }

    /// The number of signer lines (a key listed on two lines counts twice).
    pub fn len(&self) -> usize {
        self.signers.len()
    }

    /// Whether the file lists no signer at all, so no commit can pass.
    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }
}

/// Parses one line; `Ok(None)` for a blank or comment line.
fn parse_line(line: &str) -> Result<Option<Signer>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }

    let (principals, rest) = split_principals(line)?;
    if principals.split(',').all(str::is_empty) {
        return Err(format!(
            "the principals field is empty: write who the key belongs to, as in `{LINE_FORMAT}`"
        ));
    }
    let rest = rest.trim_start();

    // As in ssh-keygen, the options field is present exactly when the field
    // after the principals is not a key type.
    let first = rest.split_ascii_whitespace().next().unwrap_or("");
    let (options, key_text) = if first.is_empty() || is_key_type(first) {
        ("", rest)
    } else {
        split_options(rest)?
    };
    let mut signer = Signer {
        principals: principals.to_owned(),
        key: parse_key(key_text)?,
        namespaces: None,
        valid_after: None,
        valid_before: None,
    };
    parse_options(options, &mut signer)?;
    Ok(Some(signer))
}

/// Splits off the principals field: a double-quoted string (without its quotes)
/// or everything up to the first blank.
fn split_principals(line: &str) -> Result<(&str, &str), String> {
    if let Some(inner) = line.strip_prefix('"') {
        let end = inner.find('"').ok_or_else(|| {
            "the principals field opens a double quote it never closes: add the closing `\"`"
                .to_owned()
        })?;
        Ok((&inner[..end], &inner[end + 1..]))
    } else {
        let end = line.find([' ', '\t']).unwrap_or(line.len());
        Ok(line.split_at(end))
    }
}

/// Splits off the options field, which ends at the first blank outside double
/// quotes (a quoted value may contain blanks and commas, and `\"`).
fn split_options(text: &str) -> Result<(&str, &str), String> {
    let bytes = text.as_bytes();
    let mut quoted = false;
    let mut end = 0;
    while end < bytes.len() {
        match bytes[end] {
            b'\\' if bytes.get(end + 1) == Some(&b'"') => end += 1,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => break,
            _ => {}
        }
        end += 1;
    }
    if quoted {
        return Err(
            "the options open a double quote they never close: add the closing `\"`".into(),
        );
    }
    Ok(text.split_at(end))
}

/// Whether `word` names a public key type (rather than starting the options).
fn is_key_type(word: &str) -> bool {
    matches!(Algorithm::new(word), Ok(algorithm) if !matches!(algorithm, Algorithm::Other(_)))
}

/// Applies a comma-separated options field to `signer`.
fn parse_options(field: &str, signer: &mut Signer) -> Result<(), String> {
    let mut rest = field;
    while !rest.is_empty() {
        let name_end = rest.find(['=', ',']).unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = &rest[name_end..];
        let value = match rest.strip_prefix('=') {
            Some(quoted) => {
                let (value, after) = dequote(quoted)
                    .map_err(|err| format!("option {name}: {err}, as in {name}=\"…\""))?;
                rest = after;
                Some(value)
            }
            None => None,
        };
        rest = match rest.strip_prefix(',') {
            Some(after) => after,
            None if rest.is_empty() => rest,
            None => {
                return Err(format!(
                    "unexpected `{rest}` after option {name}: separate options with commas only"
                ))
            }
        };

        let lower = name.to_ascii_lowercase();
        match (lower.as_str(), value) {
            ("cert-authority", _) => {
                return Err(
                    "cert-authority lines are not supported: berth checks signatures \
                     made by plain keys only, so list each signer's own public key instead"
                        .into(),
                );
            }
            ("namespaces", Some(list)) => {
                set_once(&mut signer.namespaces, list, name)?;
            }
            ("valid-after", Some(time)) => {
                set_once(&mut signer.valid_after, parse_time(&time)?, name)?;
            }
            ("valid-before", Some(time)) => {
                set_once(&mut signer.valid_before, parse_time(&time)?, name)?;
            }
            ("namespaces" | "valid-after" | "valid-before", None) => {
                return Err(format!("option {name} needs a value, as in {name}=\"…\""));
            }
            _ => {
                return Err(format!(
                    "`{name}` is neither a key type berth supports nor an allowed signers option \
                     (namespaces=\"…\", valid-after=\"…\", valid-before=\"…\"): \
                     write the line as `{LINE_FORMAT}`"
                ))
            }
        }
    }
    if let (Some(after), Some(before)) = (signer.valid_after, signer.valid_before) {
        if before <= after {
            return Err(
                "valid-before is not later than valid-after, so the key is never valid: \
                 fix one of the two times"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Stores an option's value, refusing a second occurrence of the option.
fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("option {name} is given twice: keep one"));
    }
    *slot = Some(value);
    Ok(())
}

/// Reads a double-quoted option value, where `\"` stands for a quote; returns
/// the value and the text after the closing quote.
fn dequote(text: &str) -> Result<(String, &str), String> {
    let inner = text
        .strip_prefix('"')
        .ok_or_else(|| "its value must be in double quotes".to_owned())?;
    let mut value = String::new();
    let mut chars = inner.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' if inner[at + 1..].starts_with('"') => {
                chars.next();
                value.push('"');
            }
            '"' => return Ok((value, &inner[at + 1..])),
            c => value.push(c),
        }
    }
    Err("its value opens a double quote it never closes".into())
}

/// Parses `KEYTYPE BASE64KEY [COMMENT]`.
fn parse_key(text: &str) -> Result<KeyData, String> {
    let mut fields = text.split_ascii_whitespace();
    let (Some(kind), Some(data)) = (fields.next(), fields.next()) else {
        return Err(format!(
            "no public key: each line must read `{LINE_FORMAT}`, the key part copied \
             from the signer's .pub file"
        ));
    };
    PublicKey::from_openssh(&format!("{kind} {data}"))
        .map(|key| key.key_data().clone())
        .map_err(|err| {
            format!(
                "invalid {kind} public key ({err}): copy `KEYTYPE BASE64KEY` unchanged \
                 from the signer's .pub file"
            )
        })
}

/// Parses a `valid-after`/`valid-before` time, `YYYYMMDD[HHMM[SS]]` optionally
/// followed by `Z` or `UTC`, into Unix seconds (always read as UTC).
fn parse_time(text: &str) -> Result<i64, String> {
    let invalid = || {
        format!(
            "`{text}` is not a time: write YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS (UTC), \
             optionally followed by Z"
        )
    };
    let digits = text
        .strip_suffix(['Z', 'z'])
        .or_else(|| {
            let cut = text.len().checked_sub(3)?;
            let (head, tail) = (text.get(..cut)?, text.get(cut..)?);
            tail.eq_ignore_ascii_case("UTC").then_some(head)
        })
        .unwrap_or(text);
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // Every slice is within bounds and all digits, so the parses cannot fail;
    // absent parts (a date without time) are zero.
    let part = |from: usize, to: usize| -> i64 {
        digits
            .get(from..to)
            .map_or(0, |s| s.parse().unwrap_or_default())
    };
    let (year, month, day) = (part(0, 4), part(4, 6), part(6, 8));
    let (hour, minute, second) = (part(8, 10), part(10, 12), part(12, 14));
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(invalid());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days in `month` (1–12) of `year` in the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// OpenSSH's `match_pattern_list`: whether `text` matches the comma-separated
/// `*`/`?` patterns in `list`, where a match of a `!`-negated pattern vetoes.
fn match_pattern_list(text: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if match_pattern(text.as_bytes(), negated.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= match_pattern(text.as_bytes(), pattern.as_bytes()),
        }
    }
    matched
}

/// Glob match where `*` is any run of bytes and `?` any single byte.
fn match_pattern(text: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| match_pattern(&text[skip..], rest)),
        Some((&p, rest)) => match text.split_first() {
            Some((&t, text_rest)) if p == b'?' || p == t => match_pattern(text_rest, rest),
            _ => false,
        },
    }
}

/// The outcome of checking one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
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
    pub fn is_valid(&self) -> bool {
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
pub fn verify_commit(
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
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    /// The committer time of every commit the tests make: 2024-06-01 12:00:00 UTC.
    const COMMIT_TIME: i64 = 1_717_243_200;

    /// A scratch git repository plus keys, isolated from the user's git config.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let fixture = Self {
                dir: tempfile::tempdir().unwrap(),
            };
            fixture.git(&["init", "-q", "-b", "main", "repo"], ".");
            fixture
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn repo(&self) -> git2::Repository {
            git2::Repository::open(self.path("repo")).unwrap()
        }

        /// Runs a command with no access to the user's home or git config.
        fn run(&self, command: &mut Command) -> String {
            let output = command
                .env("HOME", self.dir.path())
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_DATE", format!("@{COMMIT_TIME} +0000"))
                .env("GIT_COMMITTER_DATE", format!("@{COMMIT_TIME} +0000"))
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{command:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        }

        fn git(&self, args: &[&str], cwd: &str) -> String {
            self.run(
                Command::new("git")
                    .current_dir(self.dir.path().join(cwd))
                    .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
                    .args(args),
            )
        }

        /// Generates a key pair named `name`; returns its public key line.
        fn keygen(&self, name: &str, kind: &[&str]) -> String {
            let key = self.path(name);
            self.run(
                Command::new("ssh-keygen")
                    .args(kind)
                    .args(["-N", "", "-q", "-C", name, "-f"])
                    .arg(&key),
            );
            std::fs::read_to_string(key.with_extension("pub"))
                .unwrap()
                .trim()
                .to_owned()
        }

        fn ed25519(&self, name: &str) -> String {
            self.keygen(name, &["-t", "ed25519"])
        }

        /// `ssh-keygen -l`'s fingerprint of key `name`.
        fn fingerprint(&self, name: &str) -> String {
            let out = self.run(
                Command::new("ssh-keygen")
                    .args(["-l", "-E", "sha256", "-f"])
                    .arg(self.path(name).with_extension("pub")),
            );
            out.split_whitespace().nth(1).unwrap().to_owned()
        }

        fn head(&self) -> git2::Oid {
            git2::Oid::from_str(self.git(&["rev-parse", "HEAD"], "repo").trim()).unwrap()
        }

        /// Commits with `git commit -S`, signing with key `name`.
        fn signed_commit(&self, key: &str, message: &str) -> git2::Oid {
            let signing_key = format!("user.signingkey={}", self.path(key).display());
            self.git(
                &[
                    "-c",
                    "gpg.format=ssh",
                    "-c",
                    &signing_key,
                    "commit",
                    "-q",
                    "--allow-empty",
                    "-S",
                    "-m",
                    message,
                ],
                "repo",
            );
            self.head()
        }

        fn unsigned_commit(&self, message: &str) -> git2::Oid {
            self.git(
                &[
                    "commit",
                    "-q",
                    "--allow-empty",
                    "--no-gpg-sign",
                    "-m",
                    message,
                ],
                "repo",
            );
            self.head()
        }

        /// Signs `data` with `ssh-keygen -Y sign` in `namespace`; returns the armored signature.
        fn sign(&self, key: &str, namespace: &str, data: &[u8]) -> String {
            let file = self.path("payload");
            std::fs::write(&file, data).unwrap();
            let _ = std::fs::remove_file(file.with_extension("sig"));
            self.run(
                Command::new("ssh-keygen")
                    .args(["-Y", "sign", "-n", namespace, "-q", "-f"])
                    .arg(self.path(key))
                    .arg(&file),
            );
            std::fs::read_to_string(self.path("payload.sig")).unwrap()
        }
    }

    fn allowed(text: &str) -> AllowedSigners {
        AllowedSigners::parse(text, "allowed_signers").unwrap()
    }

    fn parse_error(text: &str) -> String {
        AllowedSigners::parse(text, "allowed_signers").unwrap_err()
    }

    /// Writes `payload` as a commit object carrying `signature`, as git would.
    fn commit_with_signature(repo: &git2::Repository, payload: &str, signature: &str) -> git2::Oid {
        repo.commit_signed(payload, signature, None).unwrap()
    }

    #[test]
    fn commit_signed_by_allowed_key_is_valid() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let signers = allowed(&format!("alice@example.com {alice}\n"));
        let oid = fx.signed_commit("alice", "deploy web");

        let check = verify_commit(&fx.repo(), oid, &signers);
        let fingerprint = fx.fingerprint("alice");
        assert_eq!(
            check,
            SignatureCheck::Valid {
                principal: "alice@example.com".into(),
                fingerprint: fingerprint.clone(),
            }
        );
        assert!(check.is_valid());
        assert_eq!(
            check.to_string(),
            format!("signed by alice@example.com ({fingerprint})")
        );
    }

    #[test]
    fn unsigned_commit_is_unsigned() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let oid = fx.unsigned_commit("no signature");

        let check = verify_commit(&fx.repo(), oid, &allowed(&format!("alice {alice}")));
        assert_eq!(check, SignatureCheck::Unsigned);
        assert!(!check.is_valid());
        assert_eq!(check.to_string(), "unsigned");
    }

    #[test]
    fn missing_commit_is_invalid_not_unsigned() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        fx.unsigned_commit("root");
        let missing = git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();

        let check = verify_commit(&fx.repo(), missing, &allowed(&format!("alice {alice}")));
        assert!(
            matches!(check, SignatureCheck::Invalid(ref why) if why.contains("cannot read commit"))
        );
    }

    #[test]
    fn commit_signed_by_key_not_listed_is_unknown_key() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        fx.ed25519("mallory");
        let oid = fx.signed_commit("mallory", "sneaky");

        let check = verify_commit(&fx.repo(), oid, &allowed(&format!("alice {alice}")));
        let fingerprint = fx.fingerprint("mallory");
        assert_eq!(
            check,
            SignatureCheck::UnknownKey {
                fingerprint: fingerprint.clone()
            }
        );
        assert!(check.to_string().starts_with(&format!(
            "signed by a key not in the allowed signers ({fingerprint})"
        )));
    }

    #[test]
    fn empty_allowed_signers_accept_nothing() {
        let fx = Fixture::new();
        fx.ed25519("alice");
        let oid = fx.signed_commit("alice", "deploy");
        let signers = allowed("# nobody yet\n\n");
        assert!(signers.is_empty());
        assert!(matches!(
            verify_commit(&fx.repo(), oid, &signers),
            SignatureCheck::UnknownKey { .. }
        ));
    }

    /// A signature by an allowed key, but made for namespace "file", is
    /// `Invalid` (not `UnknownKey`): it is not a commit signature at all, and
    /// accepting it would let any file signed by a trusted key pass as a commit.
    #[test]
    fn signature_for_another_namespace_is_invalid() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let repo = fx.repo();
        let unsigned = fx.unsigned_commit("signed as a file");
        let payload = repo.odb().unwrap().read(unsigned).unwrap().data().to_vec();
        let signature = fx.sign("alice", "file", &payload);
        let oid = commit_with_signature(&repo, std::str::from_utf8(&payload).unwrap(), &signature);

        let check = verify_commit(&repo, oid, &allowed(&format!("alice {alice}")));
        match &check {
            SignatureCheck::Invalid(why) => assert!(why.contains("namespace \"file\""), "{why}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert!(check
            .to_string()
            .starts_with("bad signature: made by SHA256:"));

        // The same payload signed in namespace git is accepted, so the
        // rejection above is down to the namespace alone.
        let signature = fx.sign("alice", "git", &payload);
        let oid = commit_with_signature(&repo, std::str::from_utf8(&payload).unwrap(), &signature);
        assert!(verify_commit(&repo, oid, &allowed(&format!("alice {alice}"))).is_valid());
    }

    #[test]
    fn tampered_commit_is_invalid() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let signers = allowed(&format!("alice {alice}"));
        let repo = fx.repo();
        let original = fx.signed_commit("alice", "image: web:1.0");
        let (signature, payload) = repo.extract_signature(&original, None).unwrap();
        let (signature, payload) = (signature.as_str().unwrap(), payload.as_str().unwrap());

        // Rewriting the untouched payload reproduces the very same commit.
        assert_eq!(commit_with_signature(&repo, payload, signature), original);

        let tampered = payload.replace("web:1.0", "web:6.6");
        assert_ne!(tampered, payload);
        let oid = commit_with_signature(&repo, &tampered, signature);
        match verify_commit(&repo, oid, &signers) {
            SignatureCheck::Invalid(why) => {
                assert!(why.contains("does not verify"), "{why}")
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn gpg_signature_is_invalid() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let repo = fx.repo();
        let unsigned = fx.unsigned_commit("gpg signed");
        let payload = repo.odb().unwrap().read(unsigned).unwrap().data().to_vec();
        let gpg = "-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n";
        let oid = commit_with_signature(&repo, std::str::from_utf8(&payload).unwrap(), gpg);

        match verify_commit(&repo, oid, &allowed(&format!("alice {alice}"))) {
            SignatureCheck::Invalid(why) => assert!(why.contains("GPG"), "{why}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn malformed_ssh_signature_is_invalid() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let repo = fx.repo();
        let unsigned = fx.unsigned_commit("garbage");
        let payload = repo.odb().unwrap().read(unsigned).unwrap().data().to_vec();
        let garbage = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n";
        let oid = commit_with_signature(&repo, std::str::from_utf8(&payload).unwrap(), garbage);

        match verify_commit(&repo, oid, &allowed(&format!("alice {alice}"))) {
            SignatureCheck::Invalid(why) => assert!(why.contains("malformed"), "{why}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn namespaces_option_restricts_the_key() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let oid = fx.signed_commit("alice", "deploy");
        let repo = fx.repo();
        let check = |line: &str| verify_commit(&repo, oid, &allowed(line));

        assert!(matches!(
            check(&format!("alice namespaces=\"file\" {alice}")),
            SignatureCheck::UnknownKey { .. }
        ));
        assert!(matches!(
            check(&format!("alice namespaces=\"*,!git\" {alice}")),
            SignatureCheck::UnknownKey { .. }
        ));
        assert!(check(&format!("alice namespaces=\"file,git\" {alice}")).is_valid());
        assert!(check(&format!("alice NAMESPACES=\"g?t\" {alice}")).is_valid());
        assert!(check(&format!("alice namespaces=\"*\" {alice}")).is_valid());
    }

    /// Every line is a grant of its own, so the restricted first line does
    /// not hide the second (git would reject this commit; see the module doc).
    #[test]
    fn first_line_allowing_the_key_names_the_signer() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let oid = fx.signed_commit("alice", "deploy");
        let text = format!(
            "files-only namespaces=\"file\" {alice}\n\
             \"alice smith,alice@corp\" {alice}\n\
             later {alice}\n"
        );
        match verify_commit(&fx.repo(), oid, &allowed(&text)) {
            SignatureCheck::Valid { principal, .. } => {
                assert_eq!(principal, "alice smith")
            }
            other => panic!("expected Valid, got {other:?}"),
        }
    }

    #[test]
    fn validity_period_is_checked_against_committer_time() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let oid = fx.signed_commit("alice", "deploy");
        let repo = fx.repo();
        assert_eq!(
            repo.find_commit(oid).unwrap().committer().when().seconds(),
            COMMIT_TIME
        );
        let check = |options: &str| {
            verify_commit(&repo, oid, &allowed(&format!("alice {options} {alice}")))
        };

        assert!(check("valid-after=\"20240601\"").is_valid());
        assert!(check("valid-after=\"20240601120000Z\"").is_valid());
        assert!(!check("valid-after=\"20240601120001\"").is_valid());
        assert!(!check("valid-after=\"20240602\"").is_valid());
        assert!(check("valid-before=\"202406011200\"").is_valid());
        assert!(!check("valid-before=\"20240601115959UTC\"").is_valid());
        assert!(check("valid-after=\"20240101\",valid-before=\"20250101\"").is_valid());
        assert!(matches!(
            check("valid-after=\"20230101\",valid-before=\"20240101\""),
            SignatureCheck::UnknownKey { .. }
        ));
    }

    #[test]
    fn ecdsa_and_rsa_signatures_verify() {
        let fx = Fixture::new();
        let ecdsa = fx.keygen("ecdsa", &["-t", "ecdsa", "-b", "256"]);
        let rsa = fx.keygen("rsa", &["-t", "rsa", "-b", "2048"]);
        let signers = allowed(&format!("ops-ecdsa {ecdsa}\nops-rsa {rsa}\n"));
        let repo = fx.repo();

        let oid = fx.signed_commit("ecdsa", "ecdsa");
        assert_eq!(
            verify_commit(&repo, oid, &signers),
            SignatureCheck::Valid {
                principal: "ops-ecdsa".into(),
                fingerprint: fx.fingerprint("ecdsa"),
            }
        );
        let oid = fx.signed_commit("rsa", "rsa");
        assert_eq!(
            verify_commit(&repo, oid, &signers),
            SignatureCheck::Valid {
                principal: "ops-rsa".into(),
                fingerprint: fx.fingerprint("rsa"),
            }
        );
    }

    #[test]
    fn unsupported_key_type_is_invalid_not_tampered() {
        let fx = Fixture::new();
        let p384 = fx.keygen("p384", &["-t", "ecdsa", "-b", "384"]);
        let oid = fx.signed_commit("p384", "p384");

        match verify_commit(&fx.repo(), oid, &allowed(&format!("ops {p384}"))) {
            SignatureCheck::Invalid(why) => {
                assert!(why.contains("ecdsa-sha2-nistp384 key"), "{why}");
                assert!(why.contains("berth cannot check"), "{why}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_allowed_signers_format() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let (kind, data) = alice.split_once(' ').unwrap();
        let data = data.split_whitespace().next().unwrap();
        let text = format!(
            "# deployers\n\
             \n\
             \t  # indented comment\n\
             alice@example.com {alice}\n\
             alice@example.com,bob@example.com\t{kind}\t{data}\r\n\
             \"carol smith\" namespaces=\"git\",valid-after=\"20240101\" {kind} {data} laptop key\n\
             dave namespaces=\"a \\\"quoted\\\", list\" {kind} {data}\n"
        );
        let signers = allowed(&text);
        assert_eq!(signers.len(), 4);
        assert!(!signers.is_empty());
        assert_eq!(
            signers.signers[1].principals,
            "alice@example.com,bob@example.com"
        );
        assert_eq!(signers.signers[2].principals, "carol smith");
        assert_eq!(signers.signers[2].namespaces.as_deref(), Some("git"));
        assert_eq!(signers.signers[2].valid_after, Some(1_704_067_200));
        assert_eq!(
            signers.signers[3].namespaces.as_deref(),
            Some("a \"quoted\", list")
        );
        assert!(signers
            .signers
            .iter()
            .all(|signer| signer.key == signers.signers[0].key));
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let cases = [
            ("alice".to_owned(), "no public key"),
            ("alice ssh-ed25519".to_owned(), "no public key"),
            (
                "alice ssh-ed25519 AAAAnotbase64!".to_owned(),
                "invalid ssh-ed25519 public key",
            ),
            (
                format!("alice cert-authority {alice}"),
                "cert-authority lines are not supported",
            ),
            (
                format!("alice cert-authority,namespaces=\"git\" {alice}"),
                "cert-authority",
            ),
            (
                format!("alice no-touch-required {alice}"),
                "`no-touch-required` is neither",
            ),
            (
                format!("alice namespaces=git {alice}"),
                "must be in double quotes",
            ),
            (format!("alice namespaces=\"git {alice}"), "never close"),
            (format!("alice namespaces {alice}"), "needs a value"),
            (
                format!("alice namespaces=\"git\",namespaces=\"file\" {alice}"),
                "given twice",
            ),
            (
                format!("alice namespaces=\"git\"x {alice}"),
                "unexpected `x`",
            ),
            (
                format!("alice valid-after=\"2024\" {alice}"),
                "`2024` is not a time",
            ),
            (
                format!("alice valid-after=\"20240230\" {alice}"),
                "is not a time",
            ),
            (
                format!("alice valid-after=\"20250101\",valid-before=\"20240101\" {alice}"),
                "never valid",
            ),
            (format!("\"alice {alice}"), "never closes"),
            (format!("\"\" {alice}"), "principals field is empty"),
            (format!(", {alice}"), "principals field is empty"),
            ("alice namespaces=\"git\"\t".to_owned(), "no public key"),
        ];
        for (line, expected) in cases {
            let err = parse_error(&format!("# comment\n\nbob {alice}\n{line}\n"));
            assert!(
                err.starts_with("allowed_signers:4: ") && err.contains(expected),
                "line {line:?}: got {err:?}, expected to contain {expected:?}"
            );
        }
    }

    #[test]
    fn load_reads_a_file_and_names_it_in_errors() {
        let fx = Fixture::new();
        let alice = fx.ed25519("alice");
        let path = fx.path("allowed_signers");

        std::fs::write(&path, format!("alice {alice}\n")).unwrap();
        assert_eq!(AllowedSigners::load(&path).unwrap().len(), 1);

        std::fs::write(&path, format!("alice {alice}\nbroken\n")).unwrap();
        let err = AllowedSigners::load(&path).unwrap_err();
        assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");

        let missing = fx.path("nope");
        let err = AllowedSigners::load(&missing).unwrap_err();
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("does not exist"),
            "{err}"
        );
    }

    #[test]
    fn times_are_read_as_utc() {
        assert_eq!(parse_time("19700101"), Ok(0));
        assert_eq!(parse_time("20240601120000Z"), Ok(COMMIT_TIME));
        assert_eq!(parse_time("202406011200utc"), Ok(COMMIT_TIME));
        assert_eq!(parse_time("20240229"), Ok(1_709_164_800));
        assert_eq!(parse_time("19691231235959"), Ok(-1));
        for bad in [
            "",
            "Z",
            "2024060",
            "202406011",
            "20231301",
            "20230229",
            "20240601240000",
            "2024-06-01",
            "20240601 1200",
        ] {
            assert!(parse_time(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn namespace_patterns_follow_openssh() {
        assert!(match_pattern_list("git", "git"));
        assert!(match_pattern_list("git", "file,git"));
        assert!(match_pattern_list("git", "g*"));
        assert!(match_pattern_list("git", "?i?"));
        assert!(!match_pattern_list("git", "file"));
        assert!(!match_pattern_list("git", "gi"));
        assert!(!match_pattern_list("git", "*,!git"));
        assert!(!match_pattern_list("git", "!file"));
        assert!(!match_pattern_list("git", ""));
    }

    #[test]
    fn display_is_one_line_per_outcome() {
        let outcomes = [
            SignatureCheck::Valid {
                principal: "alice".into(),
                fingerprint: "SHA256:abc".into(),
            },
            SignatureCheck::Unsigned,
            SignatureCheck::UnknownKey {
                fingerprint: "SHA256:abc".into(),
            },
            SignatureCheck::Invalid("why".into()),
        ];
        let shown: Vec<String> = outcomes.iter().map(ToString::to_string).collect();
        assert_eq!(shown[0], "signed by alice (SHA256:abc)");
        assert_eq!(shown[1], "unsigned");
        assert!(shown[2].starts_with("signed by a key not in the allowed signers (SHA256:abc)"));
        assert_eq!(shown[3], "bad signature: why");
        assert!(shown.iter().all(|line| !line.contains('\n')));
    }
}
