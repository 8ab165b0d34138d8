//! berth's one HTTP client: notifications (`http://` and `https://`, optionally trusting a
//! private CA), the agent's loopback listener (`berth status`, the demo) and its control
//! socket (`berth pause`, `berth resume`), and a registry's manifests (`berth bump
//! --check-image`, through [`HttpClient::exchange`]).
//!
//! It is reqwest over the system's OpenSSL (native-tls), the TLS stack git2 and the
//! PostgreSQL ledger already use: one TLS stack to patch. Proxies from the environment
//! are not used: every endpoint is reached directly, as the operator wrote it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The CA file could not be read.
    #[error("{path}: {error}")]
    CaFileUnreadable {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The CA file holds no PEM certificate, or a broken one.
    #[error("{path}: not a PEM certificate bundle ({error})")]
    CaFileInvalid {
        /// The file.
        path: String,
        /// What the TLS library said.
        error: String,
    },
    /// The TLS library refused the setup.
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Why a request got no answer. Never quotes the URL: a webhook URL often carries its
/// secret in the path.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The connection (TCP, unix socket or TLS handshake) could not be opened.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The exchange did not finish within the client's deadline.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The request could not be sent or the answer not read.
    #[error("request failed: {0}")]
    Exchange(String),
}

/// Where a client connects and how long it waits.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    /// The longest wait for the connection (TCP and TLS handshake).
    pub connect_timeout: Duration,
    /// The longest wait for a whole exchange, connecting included.
    pub timeout: Duration,
    /// A PEM file of CA certificates trusted beside the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Every request goes to this unix socket, whatever the URL's host.
    pub unix_socket: Option<PathBuf>,
}

impl ClientOptions {
    /// Over TCP, with `timeout` for connecting and for the whole exchange.
    pub(crate) fn tcp(timeout: Duration) -> Self {
        Self {
            connect_timeout: timeout,
            timeout,
            ca_file: None,
            unix_socket: None,
        }
    }

    /// Over the unix socket at `path`.
    pub(crate) fn unix(path: &Path, timeout: Duration) -> Self {
        Self {
            unix_socket: Some(path.to_path_buf()),
            ..Self::tcp(timeout)
        }
    }
}

/// A status and the body of an answer read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body, lossily decoded.
    pub body: String,
}

/// An answer whose body is not read yet.
#[derive(Debug)]
pub(crate) struct Reply {
    response: reqwest::Response,
}

impl Reply {
    /// The HTTP status code.
    pub(crate) fn status(&self) -> u16 {
        self.response.status().as_u16()
    }

    /// Reads the body, at most `max` bytes of it, lossily decoded.
    pub(crate) async fn text(mut self, max: usize) -> Result<String, RequestError> {
        let mut raw = Vec::new();
        while raw.len() < max {
            match self.response.chunk().await {
                Ok(Some(chunk)) => raw.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(RequestError::Exchange(describe(e))),
            }
        }
        raw.truncate(max);
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }
}

/// The client. Cheap to clone: clones share their connections.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    inner: reqwest::Client,
    timeout: Duration,
}

/// The most body bytes [`HttpClient::get`] and [`HttpClient::post`] read: far more than
/// the agent's status of a large stack, yet bounded.
const MAX_BODY: usize = 64 << 20;

impl HttpClient {
    /// A client with these options.
    pub(crate) fn new(options: &ClientOptions) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .user_agent("berth")
            .connect_timeout(options.connect_timeout)
            // A notification is one small write; waiting to coalesce it only adds latency.
            .tcp_nodelay(true);
        if let Some(path) = &options.ca_file {
            builder = builder.tls_certs_merge(ca_bundle(path)?);
        }
        if let Some(socket) = &options.unix_socket {
            builder = builder.unix_socket(socket.as_path());
        }
        let inner = builder
            .build()
            .map_err(|e| ClientError::Setup(describe(e)))?;
        Ok(Self {
            inner,
            timeout: options.timeout,
        })
    }

    /// `GET url`, body read whole, within the deadline.
    pub(crate) async fn get(&self, url: &str) -> Result<Answer, RequestError> {
        self.whole(self.inner.get(url)).await
    }

    /// `POST url` with an empty body, answer read whole, within the deadline.
    pub(crate) async fn post(&self, url: &str) -> Result<Answer, RequestError> {
        self.whole(self.inner.post(url)).await
    }

    /// `POST url` with a JSON body; the answer's status within the deadline, its body
    /// left for the caller to read or drop.
    ///
    /// `headers` are sent too (a signature, say): a value that cannot be sent is an
    /// error that names the header, never its value.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&'static str, String)],
    ) -> Result<Reply, RequestError> {
        let mut request = self
            .inner
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| RequestError::Exchange(format!("header {name}: not a valid value")))?;
            request = request.header(*name, value);
        }
        let request = request.body(body);
        self.within(async {
            request
                .send()
                .await
                .map(|response| Reply { response })
                .map_err(classify)
        })
        .await
    }

    /// `POST url` with `body` of `content_type` and one credential header, which is
    /// marked sensitive (kept out of reqwest's debug output); the answer's status within
    /// the deadline, its body left for the caller.
    pub(crate) async fn post_authorized(
        &self,
        url: &str,
        content_type: &'static str,
        credential: (&'static str, &str),
        body: Vec<u8>,
    ) -> Result<Reply, RequestError> {
        let mut value = HeaderValue::from_str(credential.1).map_err(|_| {
            RequestError::Exchange("the credential is not a valid header value".into())
        })?;
        value.set_sensitive(true);
        let request = self
            .inner
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
            .header(credential.0, value)
            .body(body);
        self.within(async {
            request
                .send()
                .await
                .map(|response| Reply { response })
                .map_err(classify)
        })
        .await
    }

    async fn whole(&self, request: reqwest::RequestBuilder) -> Result<Answer, RequestError> {
        self.within(async {
            let reply = Reply {
                response: request.send().await.map_err(classify)?,
            };
            let status = reply.status();
            let body = reply.text(MAX_BODY).await?;
            Ok(Answer { status, body })
        })
        .await
    }

    async fn within<T>(
        &self,
        exchange: impl std::future::Future<Output = Result<T, RequestError>>,
    ) -> Result<T, RequestError> {
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(RequestError::Timeout(self.timeout)))
    }
}

/// The certificates of a PEM bundle.
fn ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|error| ClientError::CaFileUnreadable {
        path: shown.clone(),
        error,
    })?;
    let invalid = |error: String| ClientError::CaFileInvalid {
        path: shown.clone(),
        error,
    };
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(describe(e)))?;
    if certs.is_empty() {
        return Err(invalid("no certificate in it".into()));
    }
    Ok(certs)
}

/// A failed exchange, by kind.
fn classify(e: reqwest::Error) -> RequestError {
    if e.is_connect() {
        RequestError::Connect(describe(e))
    } else {
        RequestError::Exchange(describe(e))
    }
}

/// An error with its sources (reqwest's own message alone says little), without the
/// URL reqwest would quote.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        let text = inner.to_string();
        // Layers often repeat what the layer below says.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = inner.source();
    }
    parts.join(": ")
}

mod exchange;
pub(crate) use exchange::Exchange;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod tls_fixture;
