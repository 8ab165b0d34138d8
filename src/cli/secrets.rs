//! `berth secrets`: the people's side of the repository's encrypted files. `recipients`
//! prints a host's line for `.berth/recipients`; `edit` opens a `.age` file decrypted in
//! an editor and encrypts it again to every recipient; `rekey` encrypts every `.age`
//! file again after a host or person joined or left. Both print the recipients they
//! encrypt to first: whoever can push can change that list.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::exit;
use crate::secrets::recipients::{self, Recipient};
use crate::secrets::HostKeys;

/// The identity flag every `secrets` command shares.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct IdentityArgs {
    /// The age identity to decrypt with: a host's (`--age-identity` of the agent), or a
    /// person's X25519 identity file or unencrypted ssh-ed25519 / ssh-rsa private key
    /// (repeatable).
    #[arg(
        long = "age-identity",
        env = "BERTH_AGE_IDENTITY",
        value_delimiter = ',',
        value_name = "FILE",
        required = true
    )]
    pub age_identity: Vec<PathBuf>,
}

/// `berth secrets …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SecretsCommand {
    /// Print this host's recipient: the lines to add to the repository's
    /// `.berth/recipients` (then `berth secrets rekey` there). Exit 0, 2 when the
    /// identity cannot be read.
    Recipients {
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Decrypt a `.age` file into $VISUAL or $EDITOR (a new file starts empty) and
    /// encrypt what is saved to every recipient of `.berth/recipients`, which are printed
    /// first. The plaintext lives in a mode-600 file on a tmpfs (/dev/shm) while the
    /// editor runs, and is removed after. Exit 0 written or unchanged, 1 refused or
    /// failed (nothing written), 2 usage.
    Edit {
        /// The file, ending in `.age`.
        file: PathBuf,
        #[command(flatten)]
        identity: IdentityArgs,
        /// Write a new file binary rather than armored (text, which reads better in a
        /// diff). An existing file keeps its form.
        #[arg(long)]
        binary: bool,
    },
    /// Encrypt every `.age` file of the repository again to the recipients of
    /// `.berth/recipients` (printed first), after a host or person joined or left.
    /// Content is unchanged, so no service rolls. Exit 0 all written, 1 a file failed
    /// (the others are written), 2 usage.
    Rekey {
        /// The repository, or a directory inside it.
        #[arg(default_value = ".")]
        path: PathBuf,
        #[command(flatten)]
        identity: IdentityArgs,
    },
}

/// Runs a `secrets` command.
pub(super) fn run(command: &SecretsCommand) -> u8 {
    let result = match command {
        SecretsCommand::Recipients { identity } => recipients_of(identity),
        SecretsCommand::Edit {
            file,
            identity,
            binary,
        } => edit(file, identity, *binary),
        SecretsCommand::Rekey { path, identity } => rekey(path, identity),
    };
    match result {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

type Outcome = Result<u8, (u8, String)>;

fn keys(identity: &IdentityArgs) -> Result<HostKeys, (u8, String)> {
    HostKeys::load(&identity.age_identity).map_err(|e| (exit::USAGE, e))
}

fn recipients_of(identity: &IdentityArgs) -> Outcome {
    let keys = keys(identity)?;
    let host = crate::host::hostname();
    let mut out = String::new();
    for r in keys.recipients() {
        out.push_str(&format!("# {host}\n{r}\n"));
    }
    print!("{out}");
    Ok(exit::OK)
}

/// The repository's recipients, printed before anything is encrypted to them.
fn announced(start: &Path) -> Result<Vec<Recipient>, (u8, String)> {
    let root = recipients::find_root(start).map_err(|e| (exit::FAILED, e))?;
    let list = recipients::read(&root).map_err(|e| (exit::FAILED, e))?;
    eprint!("{}", recipients::describe(&list));
    Ok(list)
}

/// Writes `data` to `path` through a file beside it, renamed over it.
fn write_beside(path: &Path, data: &[u8]) -> Result<(), String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".berth-")
        .tempfile_in(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    tmp.write_all(data)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.persist(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// Where the plaintext waits for the editor: a tmpfs when there is one.
fn scratch_dir() -> (PathBuf, bool) {
    let candidates = [
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        Some(PathBuf::from("/dev/shm")),
    ];
    for dir in candidates.into_iter().flatten() {
        if dir.is_dir() && crate::secrets::runtime::on_tmpfs(&dir) {
            return (dir, true);
        }
    }
    (std::env::temp_dir(), false)
}

fn edit(file: &Path, identity: &IdentityArgs, binary: bool) -> Outcome {
    if !crate::secrets::is_sealed(file) {
        return Err((
            exit::USAGE,
            format!(
                "{} does not end in `.age`; berth decrypts only `.age` files",
                file.display()
            ),
        ));
    }
    let keys = keys(identity)?;
    let start = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let list = announced(start)?;
    let shown = file.display().to_string();
    let existing = match std::fs::read(file) {
        Ok(data) => Some(data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err((exit::FAILED, format!("{shown}: {e}"))),
    };
    let plain = match &existing {
        Some(data) => keys.decrypt(&shown, data).map_err(|e| (exit::FAILED, e))?,
        None => Vec::new(),
    };
    let (dir, tmpfs) = scratch_dir();
    if !tmpfs {
        eprintln!(
            "warning: no tmpfs for the plaintext; it waits in {} (mode 600) and is removed after",
            dir.display()
        );
    }
    // The name without `.age`, so the editor knows the kind of file.
    let inner = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fail = |e: std::io::Error| (exit::FAILED, format!("{}: {e}", dir.display()));
    let mut tmp = tempfile::Builder::new()
        .prefix("berth-secret-")
        .suffix(&format!("-{inner}"))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(fail)?;
    tmp.write_all(&plain).map_err(fail)?;
    tmp.flush().map_err(fail)?;
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".to_string());
    // Through the shell, so an editor with arguments (`code --wait`) works.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(tmp.path())
        .status()
        .map_err(|e| (exit::FAILED, format!("editor `{editor}`: {e}")))?;
    if !status.success() {
        return Err((
            exit::FAILED,
            format!("editor `{editor}` exited with {status}; {shown} left as it was"),
        ));
    }
    let edited = std::fs::read(tmp.path()).map_err(fail)?;
    drop(tmp);
    if existing.is_some() && edited == plain {
        eprintln!("{shown} unchanged; not written");
        return Ok(exit::OK);
    }
    if inner.ends_with(".env") || inner.starts_with(".env") {
        if let Err(e) = crate::plan::env_file::parse(&edited) {
            eprintln!("warning: {shown} is not a valid env file ({e}); a host will refuse it until it is fixed");
        }
    }
    let armor = match &existing {
        Some(data) => recipients::is_armored(data),
        None => !binary,
    };
    let sealed = recipients::encrypt(&list, &edited, armor).map_err(|e| (exit::FAILED, e))?;
    write_beside(file, &sealed).map_err(|e| (exit::FAILED, e))?;
    eprintln!("{shown} written, encrypted to {} recipient(s)", list.len());
    Ok(exit::OK)
}

/// Every `.age` file below `dir`, skipping `.git` and symlinks (never followed).
fn sealed_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let kind = e.file_type()?;
        let path = e.path();
        if kind.is_dir() && e.file_name() != ".git" {
            sealed_files(&path, out)?;
        } else if kind.is_file() && crate::secrets::is_sealed(&path) {
            out.push(path);
        } else if kind.is_symlink() && crate::secrets::is_sealed(&path) {
            eprintln!(
                "warning: {} is a symlink; not followed, not rekeyed",
                path.display()
            );
        }
    }
    Ok(())
}

fn rekey(path: &Path, identity: &IdentityArgs) -> Outcome {
    let keys = keys(identity)?;
    let root = recipients::find_root(path).map_err(|e| (exit::FAILED, e))?;
    let list = announced(&root)?;
    let mut files = Vec::new();
    sealed_files(&root, &mut files)
        .map_err(|e| (exit::FAILED, format!("{}: {e}", root.display())))?;
    let mut failed = 0;
    for f in &files {
        let shown = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        let done = std::fs::read(f)
            .map_err(|e| format!("{shown}: {e}"))
            .and_then(|data| {
                let plain = keys.decrypt(&shown, &data)?;
                recipients::encrypt(&list, &plain, recipients::is_armored(&data))
            })
            .and_then(|sealed| write_beside(f, &sealed));
        match done {
            Ok(()) => eprintln!("rekeyed {shown}"),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    eprintln!(
        "{} of {} file(s) rekeyed to {} recipient(s)",
        files.len() - failed,
        files.len(),
        list.len()
    );
    Ok(if failed == 0 { exit::OK } else { exit::FAILED })
}
