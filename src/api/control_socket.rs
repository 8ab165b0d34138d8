//! The control socket: `<state-dir>/control.sock`, a unix socket serving the same routes
//! as the TCP listener. Whoever can open it may change the agent's state without the
//! webhook secret (`berth pause` and `berth resume` speak through it), so only the
//! agent's own user and root may:
//! - the file is mode 0600: it is bound under a temporary name, given its mode, then
//!   renamed into place, so it is never reachable under its own name with a wider mode;
//! - each connection's peer credentials are checked as well (a socket's mode is not
//!   honoured by every system), and a connection from another user is closed unanswered.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

/// The socket's file name in the state dir.
pub(crate) const FILE_NAME: &str = "control.sock";

/// The socket's mode: read and write for its owner only.
pub(crate) const MODE: u32 = 0o600;

/// Where the control socket of the agent with this state dir lives.
pub(crate) fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// A unix listener that accepts connections only from its owner (the agent's user)
/// and root.
#[derive(Debug)]
pub(crate) struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    owner: u32,
}

impl ControlSocket {
    /// Binds `path` with mode 0600, replacing a socket left by an agent that did not
    /// stop cleanly. Anything else at `path` (a file, a directory) is refused.
    pub(crate) fn bind(path: &Path) -> io::Result<ControlSocket> {
        remove_stale(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        // Short, so that a state dir whose socket path fits also fits the temporary one.
        let temporary = dir.join(format!(".ctl{}", std::process::id()));
        remove_stale(&temporary)?;
        let listener = UnixListener::bind(&temporary)?;
        let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(MODE))
            .and_then(|()| std::fs::rename(&temporary, path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
            // SAFETY: geteuid has no preconditions and cannot fail.
            owner: unsafe { libc::geteuid() },
        })
    }

    #[cfg(test)]
    /// The socket's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// True when a peer with this user id may use the socket.
    fn admits(&self, uid: u32) -> bool {
        uid == 0 || uid == self.owner
    }
}

/// Removes a socket left at `path`; refuses to remove anything else.
fn remove_stale(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; remove it (the agent makes its control socket there)",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl axum::serve::Listener for ControlSocket {
    type Io = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => match stream.peer_cred() {
                    Ok(cred) if self.admits(cred.uid()) => return (stream, addr),
                    Ok(cred) => {
                        tracing::warn!(
                            uid = cred.uid(),
                            socket = %self.path.display(),
                            "control socket: connection from another user closed"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket: peer credentials unreadable; connection closed");
                    }
                },
                // As axum's own listeners: a failed accept (out of file descriptors)
                // is waited out, not fatal.
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// Why a request over the control socket got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    /// No agent listens there (no socket, or nobody behind it).
    #[error("no agent listens on {path}: {error}")]
    NoAgent {
        /// The socket.
        path: String,
        /// Why.
        error: String,
    },
    /// The agent took too long.
    #[error("the agent on {path} did not answer within {ms} ms")]
    Timeout {
        /// The socket.
        path: String,
        /// The wait.
        ms: u128,
    },
    /// The request could not be made or the answer not read.
    #[error("request to the agent on {path} failed: {error}")]
    Http {
        /// The socket.
        path: String,
        /// Why.
        error: String,
    },
}

/// `POST path` with an empty body to the agent behind the control socket: the status
/// code and body of the answer.
pub(crate) async fn post(
    socket: &Path,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), ControlError> {
    use crate::http_client::{ClientOptions, HttpClient, RequestError};

    let shown = socket.display().to_string();
    if !socket.exists() {
        return Err(ControlError::NoAgent {
            path: shown,
            error: "no such socket".into(),
        });
    }
    let http = |error: String| ControlError::Http {
        path: shown.clone(),
        error,
    };
    let client =
        HttpClient::new(&ClientOptions::unix(socket, timeout)).map_err(|e| http(e.to_string()))?;
    match client.post(&format!("http://localhost{path}")).await {
        Ok(answer) => Ok((answer.status, answer.body)),
        Err(RequestError::Connect(error)) => Err(ControlError::NoAgent {
            path: shown.clone(),
            error,
        }),
        Err(RequestError::Timeout(_)) => Err(ControlError::Timeout {
            path: shown.clone(),
            ms: timeout.as_millis(),
        }),
        Err(RequestError::Exchange(error)) => Err(http(error)),
    }
}

#[cfg(test)]
mod tests;
