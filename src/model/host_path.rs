//! Host paths a bind mount may use: the host operator's allowance, checked twice. By
//! spelling when the desired state is loaded (anywhere, `berth validate` included), and
//! on the host's file system right before use: the real path, with no symlink below the
//! allowed prefix, and no root-equivalent socket in it unless named.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Unix sockets that hand over the host (or its containers) to whoever can write to
/// them. A mount that is one of these, or a directory that holds one, is refused unless
/// the operator names that socket exactly.
pub const ROOT_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock.ttrpc",
    "/run/docker/containerd/containerd.sock",
    "/run/buildkit/buildkitd.sock",
    "/run/podman/podman.sock",
    "/run/crio/crio.sock",
    "/run/dbus/system_bus_socket",
    "/var/run/dbus/system_bus_socket",
    "/run/systemd/private",
    "/run/systemd/journal/stdout",
    "/run/snapd.socket",
    "/run/snapd-snap.socket",
    "/var/run/docker/containerd/containerd.sock",
];

/// One `--allow-host-path PREFIX[:ro|:rw]`: a prefix bind mounts may use, read-only
/// unless the operator allows writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHostPath {
    /// The prefix, absolute and normalized.
    pub prefix: PathBuf,
    /// Whether mounts under it may be writable.
    pub writable: bool,
}

impl AllowedHostPath {
    /// A read-only allowance.
    pub fn read_only(prefix: impl Into<PathBuf>) -> Self {
        Self {
            prefix: prefix.into(),
            writable: false,
        }
    }

    /// A writable allowance.
    pub fn writable(prefix: impl Into<PathBuf>) -> Self {
        Self {
            prefix: prefix.into(),
            writable: true,
        }
    }
}

impl fmt::Display for AllowedHostPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix.display())?;
        if self.writable {
            write!(f, ":rw")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for AllowedHostPath {
    type Err = String;

    /// `PATH`, `PATH:ro` or `PATH:rw`; the path absolute, without `.` or `..`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (path, writable) = match s.rsplit_once(':') {
            Some((p, "rw")) => (p, true),
            Some((p, "ro")) => (p, false),
            _ => (s, false),
        };
        let prefix = PathBuf::from(path);
        if !prefix.is_absolute() || !normalized(&prefix) {
            return Err(format!(
                "`{path}` must be an absolute path without `.` or `..`, e.g. /srv/uploads:rw"
            ));
        }
        Ok(Self { prefix, writable })
    }
}

fn normalized(p: &Path) -> bool {
    !p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
}

/// The allowance a path falls under: the longest matching prefix.
fn allowance<'a>(host: &Path, allowed: &'a [AllowedHostPath]) -> Option<&'a AllowedHostPath> {
    allowed
        .iter()
        .filter(|a| host.starts_with(&a.prefix))
        .max_by_key(|a| a.prefix.components().count())
}

fn named_exactly(host: &Path, allowed: &[AllowedHostPath]) -> bool {
    allowed.iter().any(|a| a.prefix == host)
}

/// The check by spelling: normalized, under an allowed prefix, writable only where the
/// host allows writes, and no root-equivalent socket unless named exactly.
pub fn check_spelling(
    host: &Path,
    read_only: bool,
    allowed: &[AllowedHostPath],
) -> Result<(), String> {
    let shown = host.display();
    if !normalized(host) {
        return Err(format!(
            "host path `{shown}` must not contain `.` or `..`; write it normalized"
        ));
    }
    socket_rule(host, host, allowed, false)?;
    let Some(a) = allowance(host, allowed) else {
        let hint = if allowed.is_empty() {
            "no host path is allowed".to_string()
        } else {
            let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
            format!("allowed: {}", list.join(", "))
        };
        return Err(format!(
            "host path `{shown}` is outside the host paths this host allows ({hint}); use a named volume, or the host's operator can allow it with `--allow-host-path PREFIX`"
        ));
    };
    if !read_only && !a.writable && !named_exactly(host, allowed) {
        return Err(format!(
            "host path `{shown}` is allowed read-only on this host (`--allow-host-path {}`); add `:ro` to the mount, or the host's operator can allow writes with `--allow-host-path {}:rw`",
            a.prefix.display(),
            a.prefix.display()
        ));
    }
    Ok(())
}

/// Refuses `host` (spelled `shown`) when it is or holds a known root-equivalent socket
/// that the operator did not name exactly. `real` is compared with the sockets as
/// spelled and, when `on_host`, with their real paths on this host.
fn socket_rule(
    real: &Path,
    shown: &Path,
    allowed: &[AllowedHostPath],
    on_host: bool,
) -> Result<(), String> {
    for sock in ROOT_SOCKETS {
        let spelled = PathBuf::from(sock);
        let resolved = on_host.then(|| real_socket_path(&spelled));
        for sock in std::iter::once(spelled).chain(resolved) {
            if sock == real {
                if named_exactly(shown, allowed) {
                    return Ok(());
                }
                return Err(format!(
                    "`{}` is a runtime socket that hands the host to the container; the host's operator can allow it by naming it: `--allow-host-path {}`",
                    shown.display(),
                    shown.display()
                ));
            }
            if sock.starts_with(real) {
                return Err(format!(
                    "host path `{}` holds the runtime socket `{}`, which hands the host to the container; mount a directory that does not hold it, or mount the socket itself once the host's operator names it with `--allow-host-path {}`",
                    shown.display(),
                    sock.display(),
                    sock.display()
                ));
            }
        }
    }
    Ok(())
}

/// A socket's path with its directory resolved (`/var/run` is a symlink to `/run` on
/// most systems); the spelling itself when the directory does not exist.
fn real_socket_path(sock: &Path) -> PathBuf {
    match (sock.parent(), sock.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or_else(|_| sock.to_path_buf()),
        _ => sock.to_path_buf(),
    }
}

/// The check on this host's file system, right before the path is used: the allowed
/// prefix is resolved (it is the operator's), then every component below it must be a
/// real directory or file, not a symlink (a container that can write under the prefix
/// could plant one leading anywhere); the real path must not be, or hold, a
/// root-equivalent socket, and any other unix socket must be named exactly. Components
/// that do not exist yet are fine: Docker creates them as directories, inside the
/// prefix. Returns the real path to mount.
pub fn check_on_host(
    host: &Path,
    read_only: bool,
    allowed: &[AllowedHostPath],
) -> Result<PathBuf, String> {
    use std::os::unix::fs::FileTypeExt;
    check_spelling(host, read_only, allowed)?;
    let a = allowance(host, allowed).expect("checked by spelling");
    let shown = host.display();
    let mut real = a.prefix.canonicalize().map_err(|e| {
        format!(
            "host path `{shown}`: the allowed prefix `{}` cannot be resolved on this host ({}); the host's operator should create it or fix `--allow-host-path`",
            a.prefix.display(),
            e.kind()
        )
    })?;
    let rest = host.strip_prefix(&a.prefix).expect("under the prefix");
    let mut missing = false;
    for part in rest.components() {
        real.push(part);
        if missing {
            continue;
        }
        match std::fs::symlink_metadata(&real) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "host path `{shown}` passes through the symlink `{}`; berth mounts only real paths below an allowed prefix (a container that can write there could point it anywhere); mount the real path",
                    real.display()
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing = true,
            Err(e) => {
                return Err(format!(
                    "host path `{shown}` cannot be checked on this host: `{}`: {}",
                    real.display(),
                    e.kind()
                ))
            }
        }
    }
    socket_rule(&real, host, allowed, true)?;
    if !missing {
        let meta = std::fs::symlink_metadata(&real).map_err(|e| {
            format!(
                "host path `{shown}` cannot be checked on this host: {}",
                e.kind()
            )
        })?;
        if meta.file_type().is_socket() && !named_exactly(host, allowed) {
            return Err(format!(
                "host path `{shown}` is a unix socket; whoever writes to it commands the service behind it; the host's operator can allow it by naming it: `--allow-host-path {shown}`"
            ));
        }
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(list: &[&str]) -> Vec<AllowedHostPath> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn allowances_parse_with_their_mode() {
        assert_eq!(
            "/srv/uploads:rw".parse::<AllowedHostPath>(),
            Ok(AllowedHostPath::writable("/srv/uploads"))
        );
        assert_eq!(
            "/srv:ro".parse::<AllowedHostPath>(),
            Ok(AllowedHostPath::read_only("/srv"))
        );
        assert_eq!(
            "/srv".parse::<AllowedHostPath>(),
            Ok(AllowedHostPath::read_only("/srv"))
        );
        assert!("srv".parse::<AllowedHostPath>().is_err());
        assert!("/srv/../etc".parse::<AllowedHostPath>().is_err());
    }

    #[test]
    fn writes_need_a_writable_allowance() {
        let a = allow(&["/srv", "/srv/uploads:rw"]);
        assert!(check_spelling(Path::new("/srv/conf"), true, &a).is_ok());
        let e = check_spelling(Path::new("/srv/conf"), false, &a).unwrap_err();
        assert!(e.contains("`--allow-host-path /srv:rw`"), "{e}");
        // The longest prefix decides.
        assert!(check_spelling(Path::new("/srv/uploads/x"), false, &a).is_ok());
    }

    #[test]
    fn socket_directories_are_refused_even_when_allowed() {
        let a = allow(&["/:rw"]);
        for dir in ["/var/run", "/run", "/", "/run/containerd", "/var"] {
            let e = check_spelling(Path::new(dir), true, &a).unwrap_err();
            assert!(e.contains("holds the runtime socket"), "{dir}: {e}");
        }
        let e = check_spelling(Path::new("/run/dbus/system_bus_socket"), true, &a).unwrap_err();
        assert!(e.contains("runtime socket"), "{e}");
        // Named exactly, the socket itself is allowed; its directory still is not.
        let a = allow(&["/var/run/docker.sock:rw", "/var"]);
        assert!(check_spelling(Path::new("/var/run/docker.sock"), false, &a).is_ok());
        assert!(check_spelling(Path::new("/var/run"), true, &a).is_err());
    }

    #[test]
    fn a_symlink_below_the_prefix_is_refused_on_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("data")).unwrap();
        std::os::unix::fs::symlink("/", base.join("r")).unwrap();
        std::os::unix::fs::symlink(base.join("data"), base.join("d")).unwrap();
        let a = vec![AllowedHostPath::writable(&base)];
        assert_eq!(
            check_on_host(&base.join("data"), false, &a),
            Ok(base.join("data"))
        );
        // Not there yet: Docker will create it inside the prefix.
        assert_eq!(
            check_on_host(&base.join("data/new/deeper"), false, &a),
            Ok(base.join("data/new/deeper"))
        );
        for link in ["r", "r/etc", "d", "d/x"] {
            let e = check_on_host(&base.join(link), false, &a).unwrap_err();
            assert!(e.contains("passes through the symlink"), "{link}: {e}");
        }
    }

    #[test]
    fn the_allowed_prefix_itself_may_be_a_symlink_of_the_operator() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("real")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("alias")).unwrap();
        let a = vec![AllowedHostPath::read_only(base.join("alias"))];
        assert_eq!(
            check_on_host(&base.join("alias/x"), true, &a),
            Ok(base.join("real/x"))
        );
    }

    #[test]
    fn any_unix_socket_needs_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let sock = base.join("app.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let a = vec![AllowedHostPath::writable(&base)];
        let e = check_on_host(&sock, false, &a).unwrap_err();
        assert!(e.contains("is a unix socket"), "{e}");
        let a = vec![
            AllowedHostPath::writable(&base),
            AllowedHostPath::writable(&sock),
        ];
        assert_eq!(check_on_host(&sock, false, &a), Ok(sock.clone()));
    }
}
