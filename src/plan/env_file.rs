//! Host-side env files, read the way `docker run --env-file` reads them: `KEY=VALUE`
//! lines whose value is taken literally, from the operator's env directory only.
//!
//! The path comes from a commit, which anyone with push access writes; the file is the
//! host operator's. So the path must resolve inside the env directory
//! (`/etc/berth/<project>/` unless `--env-dir` says otherwise), the file must be a
//! regular file of at most [`MAX_ENV_FILE_BYTES`], and a value is never expanded: no
//! `$VAR` is filled in from berth's own environment, and a `$` in a password stays.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest env file berth reads.
pub const MAX_ENV_FILE_BYTES: u64 = 1 << 20;

/// Where env files may live: the directory that `--env-dir` names (its `<project>`
/// placeholder filled in), `/etc/berth/<project>/` by default.
pub fn env_dir(template: Option<&Path>, project: &str) -> PathBuf {
    match template {
        Some(t) => PathBuf::from(t.to_string_lossy().replace("<project>", project)),
        None => Path::new("/etc/berth").join(project),
    }
}

/// Reads an env file that must lie inside `dir`. Errors name the file, the rule it broke
/// and, for a bad line, the line number and key; never a value, and never whether a
/// path outside `dir` exists.
pub fn read(path: &Path, dir: &Path) -> Result<Vec<(String, String)>, String> {
    let bytes = read_bytes(path, dir)?;
    parse(&bytes).map_err(|e| format!("env_file {}: {e}", path.display()))
}

/// The bytes of a file that must lie inside `dir`, under the rules of [`read`]: judged
/// by its spelling, then by its real path, opened without following a symlink or
/// blocking, a regular file of at most [`MAX_ENV_FILE_BYTES`].
pub fn read_bytes(path: &Path, dir: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let outside = || {
        format!(
            "env_file {shown} is not inside the env directory {}; env files are read only from there (--env-dir)",
            dir.display()
        )
    };
    // Judged by its spelling first, so nothing outside is ever looked at.
    if !path.is_absolute()
        || !path.starts_with(dir)
        || path.components().any(|c| c.as_os_str() == "..")
    {
        return Err(outside());
    }
    let real_dir = dir.canonicalize().map_err(|e| {
        format!(
            "env_file {shown}: the env directory {} cannot be read ({e}); create it, or point --env-dir at the right one",
            dir.display()
        )
    })?;
    let real = path
        .canonicalize()
        .map_err(|e| format!("env_file {shown}: {e}"))?;
    if !real.starts_with(&real_dir) {
        return Err(outside());
    }
    // Non-blocking, so a FIFO planted there cannot hang the open; then only a regular
    // file is read, and no more than the limit.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&real)
        .map_err(|e| format!("env_file {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("env_file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("env_file {shown} is not a regular file"));
    }
    if meta.len() > MAX_ENV_FILE_BYTES {
        return Err(format!(
            "env_file {shown} is larger than {} KiB; env files hold settings, not data",
            MAX_ENV_FILE_BYTES / 1024
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_ENV_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("env_file {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_ENV_FILE_BYTES {
        return Err(format!("env_file {shown} grew past the limit while read"));
    }
    Ok(bytes)
}

/// Reads a service's env files in order, a later file's keys replacing an earlier's, as
/// compose does. A relative path is taken inside `dir`; a file that is not `required`
/// and does not exist is skipped (judged only once its path is known to be inside).
pub fn read_all(files: &[crate::model::EnvFileRef], dir: &Path) -> super::EnvFile {
    read_with(files, dir, &crate::secrets::HostKeys::default()).0
}

/// As [`read_all`], decrypting age files (`.age`: the repository's, or the env
/// directory's) with `keys`; also the digest of each file's content, by the path as
/// written, so a plan can name the file that changed. A file that does not decrypt makes
/// the whole env unreadable: nothing of it reaches a container.
pub fn read_with(
    files: &[crate::model::EnvFileRef],
    dir: &Path,
    keys: &crate::secrets::HostKeys,
) -> (super::EnvFile, std::collections::BTreeMap<String, String>) {
    let mut digests = std::collections::BTreeMap::new();
    if files.is_empty() {
        return (super::EnvFile::None, digests);
    }
    let mut merged: Vec<(String, String)> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for f in files {
        let shown = f.path.display().to_string();
        let kvs = match &f.sealed {
            Some(data) => keys
                .decrypt(&format!("env_file {shown}"), data)
                .and_then(|plain| parse_shown(&plain, &shown).map(|kvs| (plain, kvs))),
            None => {
                let path = if f.path.is_absolute() {
                    f.path.clone()
                } else {
                    dir.join(&f.path)
                };
                let inside =
                    path.starts_with(dir) && !path.components().any(|c| c.as_os_str() == "..");
                if !f.required && inside {
                    if let Err(e) = path.symlink_metadata() {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            continue;
                        }
                    }
                }
                read_bytes(&path, dir)
                    .and_then(|bytes| {
                        if crate::secrets::is_sealed(&path) {
                            keys.decrypt(&format!("env_file {}", path.display()), &bytes)
                        } else {
                            Ok(bytes)
                        }
                    })
                    .and_then(|plain| {
                        parse_shown(&plain, &path.display().to_string()).map(|kvs| (plain, kvs))
                    })
            }
        };
        match kvs {
            Ok((plain, kvs)) => {
                digests.insert(shown, super::desired::digest(&[&plain]));
                for (k, v) in kvs {
                    match at.get(&k) {
                        Some(&i) => merged[i].1 = v,
                        None => {
                            at.insert(k.clone(), merged.len());
                            merged.push((k, v));
                        }
                    }
                }
            }
            Err(why) => {
                digests.insert(shown, "unreadable".to_string());
                return (super::EnvFile::Unreadable(why), digests);
            }
        }
    }
    (super::EnvFile::Loaded(merged), digests)
}

/// [`parse`], its error naming the file.
fn parse_shown(bytes: &[u8], shown: &str) -> Result<Vec<(String, String)>, String> {
    parse(bytes).map_err(|e| format!("env_file {shown}: {e}"))
}

/// The name of the host's compose `.env` inside a project's env directory.
pub const HOST_DOTENV: &str = ".env";

/// Reads the host's `.env` of a compose project: `<env dir>/.env`, with the env
/// directory's `<project>` placeholder filled in, under the same rules as env files.
/// A missing file (or env directory) is no `.env`.
pub fn read_host_dotenv(
    template: Option<&Path>,
    project: &str,
) -> Result<Option<crate::model::HostDotEnv>, String> {
    let dir = env_dir(template, project);
    let path = dir.join(HOST_DOTENV);
    match path.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
        Ok(_) => {}
    }
    let bytes = read_bytes(&path, &dir)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{} is not UTF-8 text; save it as UTF-8", path.display()))?;
    Ok(Some(crate::model::HostDotEnv {
        path: path.display().to_string(),
        text,
    }))
}

/// The loader's access to the host's `.env` files, read from the env directory that
/// `template` (`--env-dir`) names.
pub fn host_env(template: Option<std::path::PathBuf>) -> crate::model::HostEnv {
    crate::model::HostEnv::new(move |project| read_host_dotenv(template.as_deref(), project))
}

use std::os::unix::fs::OpenOptionsExt;

/// Parses env-file text as Docker does: blank lines and lines starting with `#` (after
/// leading whitespace) are skipped; the key is what comes before the first `=` and may
/// hold no whitespace; the value is everything after it, byte for byte (quotes included,
/// a trailing carriage return dropped). A line without `=` is refused: Docker would take
/// the value from its own environment, which for berth would leak the agent's.
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        format!("line {line} is not valid UTF-8")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(format!(
                "line {n} has no `=`; write KEY=VALUE (berth never fills a value in from its own environment)"
            ));
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!(
                "line {n}: the name before `=` must be one word without spaces"
            ));
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
