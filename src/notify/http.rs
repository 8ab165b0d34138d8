//! A minimal HTTP/1.1 POST for `http://` webhook URLs.
//!
//! Notifications need one request shape only (a JSON body, one response status), so a
//! few lines over a TCP stream keep the build free of a full HTTP client. The exchange
//! is generic over the stream so that a TLS stream can be slotted in later without
//! touching the request or response handling.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The most response bytes read: the status line and headers of any sane webhook
/// endpoint fit, and a broken one cannot make the reader grow without bound.
const MAX_RESPONSE: u64 = 64 * 1024;

/// How long a failed response may take to hand over its body, which is only read to
/// make the warning useful (Slack, for one, explains a 400 there).
const BODY_GRACE: Duration = Duration::from_millis(300);

/// The longest body excerpt kept for a warning.
const BODY_EXCERPT: usize = 200;

/// Why a notification URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL is `https://`, which the built-in client cannot speak.
    #[error("https notification URLs need a TLS client; use an http:// relay")]
    Https,
    /// The URL has a scheme other than `http://` or `https://`.
    #[error("notification URLs must start with http://")]
    Scheme,
    /// The URL carries `user:password@`, which would be sent nowhere and logged nowhere.
    #[error("credentials in notification URLs are not supported; put the secret in the path or use a relay")]
    Credentials,
    /// The host or port part is malformed.
    #[error("invalid host or port in notification URL: {0}")]
    Authority(String),
}

/// A parsed `http://` URL: where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The host to connect to, without brackets for an IPv6 literal.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The request target: path and query, always starting with `/`.
    pub path: String,
    /// The `Host` header value.
    pub host_header: String,
}

impl Target {
    /// Parses an `http://` URL.
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err(UrlError::Https)
            }
            _ => return Err(UrlError::Scheme),
        };
        // The fragment is never sent to a server.
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(UrlError::Credentials);
        }
        let bad = || UrlError::Authority(authority.to_string());
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                // A second colon means an IPv6 literal without its brackets.
                Some((_, p)) if p.contains(':') => return Err(bad()),
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad());
        }
        let port = match port {
            None | Some("") => 80,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        };
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let host_header = if port == 80 {
            bracketed
        } else {
            format!("{bracketed}:{port}")
        };
        Ok(Target {
            host: host.to_string(),
            port,
            path,
            host_header,
        })
    }

    /// The URL without its path: safe to log, since webhook URLs often carry their
    /// secret in the path.
    pub fn redacted(&self) -> String {
        format!("http://{}/…", self.host_header)
    }
}

/// Why one delivery attempt failed.
#[derive(Debug)]
pub(crate) enum DeliveryError {
    /// The TCP connection could not be opened.
    Connect(std::io::Error),
    /// Writing the request or reading the response failed.
    Io(std::io::Error),
    /// The attempt did not finish in time.
    Timeout(Duration),
    /// The server answered with something other than an HTTP/1.x status line.
    BadResponse(String),
    /// The server answered with a status other than 2xx.
    Status { status: u16, body: String },
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::Connect(e) => write!(f, "connect failed: {e}"),
            DeliveryError::Io(e) => write!(f, "i/o error: {e}"),
            DeliveryError::Timeout(t) => write!(f, "no answer within {} ms", t.as_millis()),
            DeliveryError::BadResponse(line) => write!(f, "not an HTTP response: {line:?}"),
            DeliveryError::Status { status, body } if body.is_empty() => {
                write!(f, "HTTP {status}")
            }
            DeliveryError::Status { status, body } => write!(f, "HTTP {status}: {body}"),
        }
    }
}

/// Sends one POST with a JSON body and succeeds on a 2xx answer, all within `timeout`.
pub(crate) async fn post_json(
    target: &Target,
    body: &[u8],
    timeout: Duration,
) -> Result<(), DeliveryError> {
    let attempt = async {
        let stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(DeliveryError::Connect)?;
        // A webhook is one small write; waiting to coalesce it only adds latency.
        let _ = stream.set_nodelay(true);
        exchange(stream, target, body).await
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(DeliveryError::Timeout(timeout)))
}

/// Writes the request and reads the status of the answer on an open stream.
async fn exchange<S>(mut stream: S, target: &Target, body: &[u8]) -> Result<(), DeliveryError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: berth\r\nContent-Type: application/json\r\nAccept: */*\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.path,
        target.host_header,
        body.len()
    );
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .await
        .map_err(DeliveryError::Io)?;
    stream.flush().await.map_err(DeliveryError::Io)?;

    let mut reader = BufReader::new(stream.take(MAX_RESPONSE));
    let status = loop {
        let status = read_status(&mut reader).await?;
        skip_headers(&mut reader).await?;
        // An interim 1xx answer (say, an unasked-for 100 Continue) precedes the real one.
        if !(100..200).contains(&status) {
            break status;
        }
    };
    if (200..300).contains(&status) {
        return Ok(());
    }
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(BODY_GRACE, reader.read_to_end(&mut raw)).await;
    Err(DeliveryError::Status {
        status,
        body: excerpt(&raw),
    })
}

/// Reads and parses `HTTP/1.x NNN reason`.
async fn read_status<R>(reader: &mut R) -> Result<u16, DeliveryError>
where
    R: AsyncBufReadExt + Unpin,
{
    let line = read_line(reader).await?;
    if line.is_empty() {
        return Err(DeliveryError::BadResponse(
            "connection closed before a status line".to_string(),
        ));
    }
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(DeliveryError::BadResponse(excerpt(line.as_bytes())));
    }
    code.parse::<u16>()
        .map_err(|_| DeliveryError::BadResponse(excerpt(line.as_bytes())))
}

/// Consumes header lines up to and including the empty line that ends them.
async fn skip_headers<R>(reader: &mut R) -> Result<(), DeliveryError>
where
    R: AsyncBufReadExt + Unpin,
{
    loop {
        let raw = read_raw_line(reader).await?;
        if raw.is_empty() {
            // The server closed the connection right after the headers: nothing more.
            return Ok(());
        }
        if raw == b"\r\n" || raw == b"\n" {
            return Ok(());
        }
    }
}

/// One line without its line ending, lossily decoded (a reason phrase may be anything).
async fn read_line<R>(reader: &mut R) -> Result<String, DeliveryError>
where
    R: AsyncBufReadExt + Unpin,
{
    let raw = read_raw_line(reader).await?;
    let text = String::from_utf8_lossy(&raw);
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// One line as bytes, line ending included; empty at the end of the stream.
async fn read_raw_line<R>(reader: &mut R) -> Result<Vec<u8>, DeliveryError>
where
    R: AsyncBufReadExt + Unpin,
{
    let mut raw = Vec::new();
    reader
        .read_until(b'\n', &mut raw)
        .await
        .map_err(DeliveryError::Io)?;
    Ok(raw)
}

/// A short, single-line, printable excerpt of what a server sent, for a log line.
fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if flat.chars().count() > BODY_EXCERPT {
        let cut: String = flat.chars().take(BODY_EXCERPT).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_path() {
        let t = Target::parse("http://relay.local:8080/hooks/abc?x=1#frag").unwrap();
        assert_eq!(t.host, "relay.local");
        assert_eq!(t.port, 8080);
        assert_eq!(t.path, "/hooks/abc?x=1");
        assert_eq!(t.host_header, "relay.local:8080");
        assert_eq!(t.redacted(), "http://relay.local:8080/…");
    }

    #[test]
    fn defaults_port_and_path() {
        let t = Target::parse("HTTP://example").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        assert_eq!(t.host_header, "example");
        let t = Target::parse("http://example?q=1").unwrap();
        assert_eq!(t.path, "/?q=1");
    }

    #[test]
    fn parses_ipv6_literals() {
        let t = Target::parse("http://[::1]:9000/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        assert_eq!(t.host_header, "[::1]:9000");
        let t = Target::parse("http://[::1]/").unwrap();
        assert_eq!((t.port, t.host_header.as_str()), (80, "[::1]"));
    }

    #[test]
    fn rejects_what_it_cannot_send() {
        assert_eq!(
            Target::parse("https://hooks.example/x"),
            Err(UrlError::Https)
        );
        assert_eq!(Target::parse("ftp://x/"), Err(UrlError::Scheme));
        assert_eq!(Target::parse("example.com/x"), Err(UrlError::Scheme));
        assert_eq!(
            Target::parse("http://u:p@example/"),
            Err(UrlError::Credentials)
        );
        assert!(matches!(
            Target::parse("http://:80/"),
            Err(UrlError::Authority(_))
        ));
        assert!(matches!(
            Target::parse("http://h:99999/"),
            Err(UrlError::Authority(_))
        ));
        assert!(matches!(
            Target::parse("http://h:0/"),
            Err(UrlError::Authority(_))
        ));
        assert!(matches!(
            Target::parse("http://::1/"),
            Err(UrlError::Authority(_))
        ));
        assert!(matches!(
            Target::parse("http://[::1/"),
            Err(UrlError::Authority(_))
        ));
        assert!(matches!(
            Target::parse("http://h/a b"),
            Err(UrlError::Authority(_))
        ));
    }

    #[test]
    fn excerpts_are_short_and_flat() {
        assert_eq!(excerpt(b"invalid_payload\r\n"), "invalid_payload");
        let long = vec![b'a'; 500];
        assert_eq!(excerpt(&long).chars().count(), BODY_EXCERPT + 1);
    }

    #[tokio::test]
    async fn reads_status_after_interim_answer() {
        let (client, mut server) = tokio::io::duplex(4096);
        let target = Target::parse("http://h/p").unwrap();
        let server = tokio::spawn(async move {
            let mut buf = vec![0u8; 1024];
            let n = server.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            server
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            request
        });
        exchange(client, &target, b"{}").await.unwrap();
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /p HTTP/1.1\r\nHost: h\r\n"));
        assert!(request.contains("Content-Length: 2\r\n"));
        assert!(request.ends_with("\r\n\r\n{}"));
    }

    #[tokio::test]
    async fn garbage_is_a_bad_response() {
        let (client, mut server) = tokio::io::duplex(4096);
        let target = Target::parse("http://h/").unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1024];
            let _ = server.read(&mut buf).await;
            let _ = server.write_all(b"SSH-2.0-OpenSSH\r\n").await;
        });
        let err = exchange(client, &target, b"{}").await.unwrap_err();
        assert!(matches!(err, DeliveryError::BadResponse(_)), "{err}");
    }
}
