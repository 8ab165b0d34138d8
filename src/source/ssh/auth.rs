//! Who berth is to an ssh server: a key file (maybe with a passphrase) or the keys of an
//! ssh-agent. A key file given wins over an agent; the passphrase is never printed.

use std::path::{Path, PathBuf};

/// How berth authenticates over ssh, in the order it is chosen.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) enum SshIdentity {
    /// `--git-ssh-key`: a private key file, with the passphrase from
    /// `--git-ssh-passphrase-file` when it is encrypted.
    KeyFile {
        /// The private key.
        key: PathBuf,
        /// Its passphrase.
        passphrase: Option<String>,
        /// Where the passphrase came from, for messages.
        passphrase_file: Option<PathBuf>,
    },
    /// No key file, but `SSH_AUTH_SOCK` names an agent: each of its keys is offered.
    Agent {
        /// The agent's socket.
        socket: PathBuf,
    },
    /// Neither: an ssh remote is refused with a message saying what to give.
    #[default]
    None,
}

impl std::fmt::Debug for SshIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshIdentity::KeyFile {
                key,
                passphrase,
                passphrase_file,
            } => f
                .debug_struct("KeyFile")
                .field("key", key)
                .field(
                    "passphrase",
                    &passphrase.as_ref().map(|_| crate::urls::MASK),
                )
                .field("passphrase_file", passphrase_file)
                .finish(),
            SshIdentity::Agent { socket } => {
                f.debug_struct("Agent").field("socket", socket).finish()
            }
            SshIdentity::None => f.write_str("None"),
        }
    }
}

impl SshIdentity {
    /// The identity from the flags and the environment's `SSH_AUTH_SOCK`
    /// (`agent_socket`): a key file first, then the agent.
    pub(crate) fn choose(
        key: Option<&Path>,
        passphrase_file: Option<&Path>,
        agent_socket: Option<&str>,
    ) -> Result<Self, String> {
        if let Some(key) = key {
            let passphrase = passphrase_file.map(read_passphrase).transpose()?;
            return Ok(SshIdentity::KeyFile {
                key: key.to_path_buf(),
                passphrase,
                passphrase_file: passphrase_file.map(Path::to_path_buf),
            });
        }
        if let Some(file) = passphrase_file {
            return Err(format!(
                "--git-ssh-passphrase-file {} is for the key of --git-ssh-key, which is not given",
                file.display()
            ));
        }
        Ok(match agent_socket.filter(|s| !s.is_empty()) {
            Some(socket) => SshIdentity::Agent {
                socket: PathBuf::from(socket),
            },
            None => SshIdentity::None,
        })
    }
}

/// The passphrase in `path`: its first line. The file must be readable by its owner
/// only, as ssh wants of private keys.
pub(crate) fn read_passphrase(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("--git-ssh-passphrase-file {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "--git-ssh-passphrase-file {0} can be read by others (mode {mode:03o}); make it the owner's alone: chmod 600 {0}",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--git-ssh-passphrase-file {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(format!(
            "--git-ssh-passphrase-file {} is empty; write the key's passphrase on its first line",
            path.display()
        ));
    }
    Ok(line.to_string())
}

/// True when the private key file is encrypted (OpenSSH's format or the old PEM one);
/// `None` when it cannot be read or parsed (libssh2 then says why).
pub(crate) fn key_is_encrypted(key: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(key).ok()?;
    if text.contains("BEGIN OPENSSH PRIVATE KEY") {
        return ssh_key::PrivateKey::from_openssh(&text)
            .ok()
            .map(|k| k.is_encrypted());
    }
    text.contains("-----BEGIN")
        .then(|| text.contains("ENCRYPTED"))
}
