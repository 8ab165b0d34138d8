//! A Docker credential helper asked for one registry's credentials: the program
//! `docker-credential-<name>` found on PATH, run without a shell as `<program> get`,
//! the server URL written to its stdin and stdin closed, its answer the JSON
//! `{"ServerURL","Username","Secret"}` on stdout. It runs under a timeout and is killed
//! when it overruns; nothing it prints on failure is repeated without being cut and
//! masked, since a helper may print the secret it holds.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::runtime::RegistryAuth;

/// Most bytes read of a helper's stdout and of its stderr; an answer is a few hundred.
const MAX_OUTPUT: u64 = 64 * 1024;

/// Longest part of a helper's message repeated in an error.
const MAX_MESSAGE: usize = 200;

/// What a helper prints, on stdout with a non-zero exit, when it holds nothing for the
/// server (docker-credential-helpers' `ErrCredentialsNotFound`).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The user name by which a helper says that `Secret` is an identity token.
const TOKEN_USER: &str = "<token>";

/// Why a helper gave no credentials; each names the program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HelperError {
    #[error("{program} is not on PATH ({path}); install it, or put its directory on the PATH berth runs with")]
    NotFound { program: String, path: String },
    #[error("{program} could not be started: {error}")]
    Spawn { program: String, error: String },
    #[error("{program} did not answer within {} s and was killed", .timeout.as_secs())]
    Timeout { program: String, timeout: Duration },
    #[error("{program} failed ({status}): {message}")]
    Failed {
        program: String,
        status: String,
        message: String,
    },
    #[error("{program} answered with {bytes} bytes that are not the credential-helper JSON {{\"Username\",\"Secret\"}} (not shown: they may hold the secret)")]
    Answer { program: String, bytes: usize },
}

/// A credential-helper answer.
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// `docker-credential-<name>` on the directories of `path` (a `PATH` value): the first
/// that is an executable file. `name` was checked by the config reader.
pub(crate) fn find_program(name: &str, path: Option<&OsString>) -> Result<PathBuf, HelperError> {
    let program = format!("docker-credential-{name}");
    let dirs = path.map(std::env::split_paths).into_iter().flatten();
    for dir in dirs {
        // An empty entry means the current directory to a shell; never here.
        if !dir.is_absolute() {
            continue;
        }
        let candidate = dir.join(&program);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(HelperError::NotFound {
        program,
        path: path
            .map(|p| p.to_string_lossy().chars().take(MAX_MESSAGE).collect())
            .unwrap_or_else(|| "PATH is not set".into()),
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Asks `program` for the credentials of `server`. `Ok(None)` when it holds none.
pub(crate) async fn get(
    program: &Path,
    server: &str,
    timeout: Duration,
) -> Result<Option<RegistryAuth>, HelperError> {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut child = spawn(program).await.map_err(|e| HelperError::Spawn {
        program: name.clone(),
        error: e.to_string(),
    })?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let talk = async {
        if let Some(mut s) = stdin {
            // A helper that exits without reading its stdin is judged by its answer.
            let _ = s.write_all(server.as_bytes()).await;
            let _ = s.write_all(b"\n").await;
            drop(s);
        }
        let (out, err) = tokio::join!(read_bounded(stdout), read_bounded(stderr));
        let status = child.wait().await;
        (out, err, status)
    };
    let answered = tokio::time::timeout(timeout, talk).await;
    let (out, err, status) = match answered {
        Ok(done) => done,
        Err(_) => {
            // `talk` is dropped with its borrow: the helper's whole process group is
            // killed (what it started too, such as a `cat` of a shell script or a cloud
            // CLI), and the helper reaped here.
            if let Some(pid) = child.id() {
                // SAFETY: killpg(2) of the group this helper leads (`process_group(0)`).
                unsafe { libc::killpg(pid as libc::pid_t, libc::SIGKILL) };
            }
            let _ = child.kill().await;
            return Err(HelperError::Timeout {
                program: name,
                timeout,
            });
        }
    };
    let status = status.map_err(|e| HelperError::Spawn {
        program: name.clone(),
        error: e.to_string(),
    })?;
    if !status.success() {
        let message = first_line(&out).or_else(|| first_line(&err));
        if message.as_deref().is_some_and(|m| m.contains(NOT_FOUND)) {
            return Ok(None);
        }
        return Err(HelperError::Failed {
            program: name,
            status: status.to_string(),
            message: message
                .map(|m| mask(&m))
                .unwrap_or_else(|| "it printed nothing".into()),
        });
    }
    let answer: Answer = serde_json::from_slice(&out).map_err(|_| HelperError::Answer {
        program: name,
        bytes: out.len(),
    })?;
    Ok(auth_of(answer, server))
}

/// Starts `<program> get` with its three pipes. A program just written (an update of
/// the helper) can be busy for a moment while another process's fork still holds it
/// open for writing: that is tried again, a few times.
async fn spawn(program: &Path) -> std::io::Result<tokio::process::Child> {
    let mut tries = 0;
    loop {
        let started = Command::new(program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so that a timeout kills what it started too.
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        match started {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 5 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// The credentials of an answer: `<token>` as user name makes the secret an identity
/// token. An empty secret is no credentials.
fn auth_of(answer: Answer, server: &str) -> Option<RegistryAuth> {
    if answer.secret.is_empty() {
        return None;
    }
    Some(if answer.username == TOKEN_USER {
        RegistryAuth {
            username: String::new(),
            password: String::new(),
            identity_token: Some(answer.secret),
            server: server.to_string(),
        }
    } else {
        RegistryAuth {
            username: answer.username,
            password: answer.secret,
            identity_token: None,
            server: server.to_string(),
        }
    })
}

async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(p) = pipe {
        let _ = p.take(MAX_OUTPUT).read_to_end(&mut buf).await;
    }
    buf
}

/// The first non-empty line, control characters dropped, cut to [`MAX_MESSAGE`].
fn first_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let clean: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE)
        .collect();
    let cut = line.chars().filter(|c| !c.is_control()).count() > MAX_MESSAGE;
    Some(if cut { format!("{clean}…") } else { clean })
}

/// Words after which a message is withheld: what follows may be the secret.
const SECRET_WORDS: [&str; 9] = [
    "secret",
    "password",
    "passwd",
    "token",
    "bearer",
    "authorization",
    "credential:",
    "apikey",
    "api_key",
];

/// A helper's message made safe to repeat: cut at the first word that announces a
/// secret or at a `{` (JSON, perhaps its answer), and any long word mixing letters and
/// digits (a token's shape) replaced by `***`.
pub(crate) fn mask(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let cut = SECRET_WORDS
        .iter()
        .filter_map(|w| lower.find(w))
        .chain(message.find('{'))
        .min();
    let (kept, withheld) = match cut {
        Some(i) => (&message[..i], true),
        None => (message, false),
    };
    let mut out: Vec<String> = kept
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(mask_word)
        .collect();
    if withheld {
        out.push("[rest withheld: it may hold a secret]".into());
    }
    out.join(" ").trim().to_string()
}

fn mask_word(word: &str) -> String {
    let long = word.chars().count() >= 16;
    let letters = word.chars().any(|c| c.is_ascii_alphabetic());
    let digits = word.chars().any(|c| c.is_ascii_digit());
    let path_like = word.starts_with('/') || word.contains("://");
    if long && letters && digits && !path_like {
        "***".into()
    } else {
        word.to_string()
    }
}
