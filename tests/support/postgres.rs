//! A PostgreSQL server on loopback, from Debian's `postgresql` package.
//!
//! A cluster of its own (`initdb`) in a short directory under `/tmp`, run by
//! the `postgres` user (the server refuses to run as root) on
//! `127.0.0.1:PORT` with `trust` authentication: any password is accepted,
//! which is fine for tests. Needs root to switch to that user.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, Once, OnceLock};
use std::time::Instant;

use super::cleanup;

/// Where Debian keeps the server programs (`initdb`, `pg_ctl`, `postgres`).
const BIN_DIRS: &[&str] = &["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"];

/// Shell script that outlives the test process by at most a second: when the
/// process that started the server is gone, it shuts the server down
/// (SIGQUIT: immediate shutdown) and removes its files. Exit hooks do not run
/// when a test process is killed.
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
pid=$(head -n 1 "$2/data/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$2"
"#;

/// Clusters of this process not dropped yet, stopped at exit (one kept in a
/// static is never dropped).
static LIVE: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

/// A PostgreSQL cluster with its own port and directory, stopped and deleted
/// when dropped. The superuser is `postgres`, database `postgres`.
pub struct Postgres {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    watchdog: cleanup::Watchdog,
}

impl Postgres {
    /// Creates a cluster and starts it on a free loopback port (well under a
    /// second).
    pub fn start() -> Postgres {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!("the PostgreSQL test server needs root (to run it as `postgres`)");
        }
        let bin = BIN_DIRS
            .iter()
            .map(PathBuf::from)
            .find(|d| d.join("pg_ctl").exists())
            .unwrap_or_else(|| {
                panic!("no PostgreSQL server in {BIN_DIRS:?}; install Debian's postgresql package")
            });
        // The server's unix socket goes here too: keep the path short.
        let dir = tempfile::Builder::new()
            .prefix("bpg-")
            .tempdir_in("/tmp")
            .expect("create PostgreSQL directory")
            .keep();
        let chown = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&dir)
            .status()
            .expect("run chown");
        assert!(chown.success(), "chown postgres {}", dir.display());
        register(&dir, &bin);

        let watchdog = cleanup::Watchdog::spawn(WATCHDOG, "berth-test-postgres-watchdog", &[&dir]);

        // From here on, a panic drops the server, which cleans up.
        let mut pg = Postgres {
            port: 0,
            dir,
            bin,
            watchdog,
        };
        let started = Instant::now();
        pg.initdb();
        // The free port is only reserved once the server binds it; another
        // process may take it first, so a failed start retries elsewhere.
        let mut error = String::new();
        for _ in 0..3 {
            pg.port = free_port();
            match pg.try_start() {
                Ok(()) => {
                    eprintln!(
                        "PostgreSQL up on 127.0.0.1:{} in {:.1} s",
                        pg.port,
                        started.elapsed().as_secs_f64()
                    );
                    return pg;
                }
                Err(e) => error = e,
            }
        }
        panic!("{error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory of the cluster: `data/` (PGDATA), `log` (server log), and
    /// the server's unix socket.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// `postgres://USER:PASSWORD@127.0.0.1:PORT/DB?sslmode=disable`, user and
    /// password percent-encoded.
    pub fn url(&self, db_user: &str, password: &str, db: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}?sslmode=disable",
            percent_encode(db_user),
            percent_encode(password),
            self.port,
            percent_encode(db)
        )
    }

    /// Runs a server program (`initdb`, `pg_ctl`) as the `postgres` user.
    fn as_postgres<I, S>(&self, program: &str, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            // A directory the postgres user can read.
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `runuser ... {program}`: {e}"))
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let mut all = vec![OsString::from("-D"), self.data_dir().into()];
        all.extend(args.iter().map(OsString::from));
        self.as_postgres("pg_ctl", all)
    }

    /// Whether the server runs.
    pub fn is_running(&self) -> bool {
        self.pg_ctl(&["status"]).status.success()
    }

    /// Makes the cluster's data directory (`initdb`).
    fn initdb(&self) {
        let data = self.data_dir();
        let initdb = self.as_postgres(
            "initdb",
            [
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        if !initdb.status.success() {
            panic!(
                "initdb failed ({}):\n{}{}",
                initdb.status,
                String::from_utf8_lossy(&initdb.stdout),
                String::from_utf8_lossy(&initdb.stderr)
            );
        }
    }

    fn try_start(&self) -> Result<(), String> {
        self.start_listening("127.0.0.1")
    }

    /// Starts the server listening on `addresses` (`''`: on its unix socket only).
    fn start_listening(&self, addresses: &str) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -h {addresses} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data_dir())
            .args(["-o", &options, "-l"])
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            // The server is not in the test run's process group: a Ctrl-C
            // leaves it to the watchdog.
            .process_group(0)
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "PostgreSQL on 127.0.0.1:{} did not start ({}):\n{}{}\nserver log:\n{}",
            self.port,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        ))
    }

    /// Starts the server again after [`Postgres::stop`], on the same port
    /// and with the same data, and waits until it accepts connections. Does
    /// nothing when it runs.
    pub fn start_again(&self) {
        if self.is_running() {
            return;
        }
        if let Err(e) = self.try_start() {
            panic!("{e}");
        }
    }

    /// A failover to a new server holding a restored backup: the server stops, the
    /// backup (`pg_dumpall`) is taken of what it had committed while no client can
    /// reach it (unix socket only), the cluster is made again from nothing (`initdb`),
    /// the backup restored, and the new server listens on the same port. Clients see
    /// the server go away and another one come back. Call [`Postgres::stop`] first
    /// for a failover that takes time.
    pub fn fail_over(&self) {
        self.stop();
        let socket_only = |pg: &Postgres| {
            if let Err(e) = pg.start_listening("''") {
                panic!("{e}");
            }
        };
        socket_only(self);
        let dump = self.dir.join("backup.sql");
        let port = self.port.to_string();
        let dumped = self.as_postgres(
            "pg_dumpall",
            [
                "-h".as_ref(),
                self.dir.as_os_str(),
                "-p".as_ref(),
                port.as_ref(),
                "-f".as_ref(),
                dump.as_os_str(),
            ],
        );
        assert!(
            dumped.status.success(),
            "pg_dumpall failed: {}",
            String::from_utf8_lossy(&dumped.stderr)
        );
        self.stop();
        fs::remove_dir_all(self.data_dir()).expect("remove the old cluster");
        self.initdb();
        socket_only(self);
        // The new cluster has the role `postgres` already: that one error is expected.
        let restored = self.as_postgres(
            "psql",
            [
                "-X".as_ref(),
                "-q".as_ref(),
                "-h".as_ref(),
                self.dir.as_os_str(),
                "-p".as_ref(),
                port.as_ref(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "-d".as_ref(),
                "postgres".as_ref(),
                "-f".as_ref(),
                dump.as_os_str(),
            ],
        );
        let errors: Vec<String> = String::from_utf8_lossy(&restored.stderr)
            .lines()
            .filter(|l| l.contains("ERROR") && !l.contains("role \"postgres\" already exists"))
            .map(str::to_string)
            .collect();
        assert!(
            restored.status.success() && errors.is_empty(),
            "restoring the backup failed: {errors:?}"
        );
        self.stop();
        self.start_again();
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are ended) and
    /// waits until it has exited. Does nothing when it does not run.
    pub fn stop(&self) {
        if !self.data_dir().join("postmaster.pid").exists() {
            return;
        }
        let out = self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]);
        if !out.status.success() && self.is_running() {
            panic!(
                "pg_ctl stop failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// `psql` as `USER` on database `DB`: `-At` output (unaligned, tuples
    /// only), trimmed; `Err` with psql's stderr when it fails. Any password
    /// is accepted.
    pub fn try_psql_as(&self, user: &str, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(psql_binary())
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", user, "-d", db, "-c", sql])
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "psql -U {user} -d {db} -c {sql:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Runs SQL as the superuser on database `postgres` and returns the
    /// trimmed `-At` output; panics with psql's stderr when it fails. Several
    /// statements in one call run in one transaction.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db("postgres", sql)
    }

    /// [`Postgres::psql`] on database `db`.
    pub fn psql_db(&self, db: &str, sql: &str) -> String {
        self.try_psql_as("postgres", db, sql)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates a login role with a password, without any other privilege,
    /// and a database it owns (so it can create schemas and tables there).
    /// Other roles, except superusers, cannot connect to that database.
    pub fn create_role_and_db(&self, role: &str, password: &str, db: &str) {
        let r = quote_ident(role);
        let d = quote_ident(db);
        self.psql(&format!(
            "CREATE ROLE {r} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE \
             NOREPLICATION NOBYPASSRLS",
            quote_literal(password)
        ));
        // CREATE DATABASE cannot run inside a transaction: its own call.
        self.psql(&format!("CREATE DATABASE {d} OWNER {r}"));
        self.psql(&format!("REVOKE ALL ON DATABASE {d} FROM PUBLIC"));
    }

    fn shutdown(&self) {
        self.stop();
        self.watchdog.disarm();
        let _ = fs::remove_dir_all(&self.dir);
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(d, _)| d != &self.dir);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn register(dir: &Path, bin: &Path) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        cleanup::on_exit(|| {
            let live = match LIVE.try_lock() {
                Ok(mut l) => std::mem::take(&mut *l),
                Err(_) => return,
            };
            for (dir, bin) in live {
                let _ = Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(dir.join("data"))
                    .args(["-m", "immediate", "-w", "stop"])
                    .current_dir("/")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let _ = fs::remove_dir_all(&dir);
            }
        })
    });
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((dir.to_path_buf(), bin.to_path_buf()));
}

fn psql_binary() -> &'static str {
    static PSQL: OnceLock<String> = OnceLock::new();
    PSQL.get_or_init(|| {
        BIN_DIRS
            .iter()
            .map(|d| format!("{d}/psql"))
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| "psql".to_string())
    })
}

/// `"name"` with inner quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with inner quotes doubled.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Everything but unreserved URL characters as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    l.local_addr().expect("local address").port()
}
