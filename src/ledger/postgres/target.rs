//! Where the fleet's PostgreSQL is: the URL, libpq's environment and `sslmode`, and the
//! TLS setup over the system's OpenSSL.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::Config;

/// Where the fleet's PostgreSQL is and how to reach it.
#[derive(Clone)]
pub struct PgTarget {
    /// The driver's connection settings.
    pub(super) config: Config,
    /// Verify the server certificate against the trusted roots.
    pub(super) verify_ca: bool,
    /// Also check that it names the host.
    pub(super) verify_host: bool,
    /// A CA file to trust instead of the system's roots.
    root_cert: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PgTarget {
    /// Parses a `postgres://` URL. What it leaves out comes from the `PG*` environment
    /// (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`,
    /// `PGSSLROOTCERT`) through `env`, and the password from `password_file` when given.
    /// `sslmode` takes libpq's words: `disable`, `prefer`, `require` (encrypted, no
    /// certificate check), `verify-ca` and `verify-full`.
    pub fn parse(
        url: &str,
        password_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgTarget, String> {
        // libpq's verify modes are not in the driver's parser: take sslmode and
        // sslrootcert out and apply them here.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut ssl_mode = None;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", v)) => ssl_mode = Some(v.to_string()),
                Some(("sslrootcert", v)) => root_cert = Some(v.to_string()),
                _ => rest.push(pair),
            }
        }
        let cleaned = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config = Config::from_str(&cleaned).map_err(|e| {
            // The driver's message may quote the URL, password and all.
            let e = crate::urls::redact_urls_in(&e.to_string());
            format!("--coordination: not a PostgreSQL URL ({e}); expected postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full")
        })?;
        if config.get_hosts().is_empty() {
            config.host(env("PGHOST").as_deref().unwrap_or("localhost"));
        }
        if config.get_ports().is_empty() {
            if let Some(p) = env("PGPORT") {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("PGPORT {p:?} is not a port number"))?;
                config.port(port);
            }
        }
        if config.get_user().is_none() {
            if let Some(u) = env("PGUSER") {
                config.user(u);
            }
        }
        if config.get_dbname().is_none() {
            if let Some(d) = env("PGDATABASE") {
                config.dbname(d);
            }
        }
        if config.get_user().is_none() {
            return Err("--coordination: no user; put it in the URL (postgres://berth@db/berth) or set PGUSER".into());
        }
        if let Some(file) = password_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("--coordination-password-file {}: {e}", file.display()))?;
            config.password(text.trim_end_matches(['\r', '\n']));
        } else if config.get_password().is_none() {
            if let Some(p) = env("PGPASSWORD") {
                config.password(p);
            }
        }
        let mode = ssl_mode.or_else(|| env("PGSSLMODE"));
        let (ssl, verify_ca, verify_host) = match mode.as_deref().unwrap_or("prefer") {
            "disable" => (SslMode::Disable, false, false),
            "allow" | "prefer" => (SslMode::Prefer, false, false),
            "require" => (SslMode::Require, false, false),
            "verify-ca" => (SslMode::Require, true, false),
            "verify-full" => (SslMode::Require, true, true),
            other => {
                return Err(format!(
                    "--coordination: unknown sslmode {other:?}; use disable, prefer, require, verify-ca or verify-full"
                ))
            }
        };
        config.ssl_mode(ssl);
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("berth");
        config.keepalives_idle(Duration::from_secs(30));
        Ok(PgTarget {
            config,
            verify_ca,
            verify_host,
            root_cert: root_cert
                .or_else(|| env("PGSSLROOTCERT"))
                .map(std::path::PathBuf::from),
        })
    }

    /// `postgres://user@host:port/db`, never with the password.
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{}@{host}:{port}/{}",
            self.config.get_user().unwrap_or(""),
            self.config
                .get_dbname()
                .or(self.config.get_user())
                .unwrap_or("")
        )
    }

    /// The TLS connector of `sslmode`, `sslrootcert` and the trusted roots.
    pub(super) fn tls(&self) -> Result<MakeTlsConnector, String> {
        let mut builder =
            SslConnector::builder(SslMethod::tls()).map_err(|e| format!("TLS setup: {e}"))?;
        if let Some(ca) = &self.root_cert {
            builder
                .set_ca_file(ca)
                .map_err(|e| format!("sslrootcert {}: {e}", ca.display()))?;
        }
        if !self.verify_ca {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let mut tls = MakeTlsConnector::new(builder.build());
        let verify_host = self.verify_host;
        tls.set_callback(move |connect, _domain| {
            connect.set_verify_hostname(verify_host);
            Ok(())
        });
        Ok(tls)
    }
}
