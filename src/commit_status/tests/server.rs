//! A git host's commit-status API on loopback, as each host documents it: the path,
//! the method, the token's header, the body's type and fields, and `201 Created`.
//! What does not match is answered as the host would (401, 404, 415, 422) and kept
//! for the test to look at. It can fail (500) a given number of times first.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;

use super::super::Provider;

/// A status the API took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub sha: String,
    /// As the API names it (`failed` on GitLab, `failure` elsewhere).
    pub state: String,
    pub context: String,
    pub description: String,
}

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    /// Requests refused, with why.
    refused: Vec<String>,
    /// Every request, failed ones included.
    requests: u32,
}

struct Inner {
    provider: Provider,
    token: String,
    /// `owner/repo`, or GitLab's project path.
    path: String,
    fail_first: AtomicU32,
    log: Mutex<Log>,
    changed: tokio::sync::Notify,
}

/// The API host.
#[derive(Clone)]
pub(crate) struct ApiHost {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
}

type Answer = (StatusCode, &'static str);

impl ApiHost {
    /// Serves `provider`'s API for repository `path` with `token`; the first
    /// `fail_first` requests get a 500.
    pub(crate) async fn start(
        provider: Provider,
        token: &str,
        path: &str,
        fail_first: u32,
    ) -> ApiHost {
        let inner = Arc::new(Inner {
            provider,
            token: token.into(),
            path: path.into(),
            fail_first: AtomicU32::new(fail_first),
            log: Mutex::default(),
            changed: tokio::sync::Notify::new(),
        });
        let app = Router::new()
            .route(
                "/repos/{owner}/{repo}/statuses/{sha}",
                axum::routing::any(github),
            )
            .route(
                "/api/v4/projects/{id}/statuses/{sha}",
                axum::routing::any(gitlab),
            )
            .route(
                "/api/v1/repos/{owner}/{repo}/statuses/{sha}",
                axum::routing::any(gitea),
            )
            .fallback(|uri: Uri| async move { (StatusCode::NOT_FOUND, format!("no route {uri}")) })
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        ApiHost { inner, addr }
    }

    /// The API base to configure: `http://127.0.0.1:port`.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until `n` statuses were taken (at most `timeout`); what was taken.
    pub(crate) async fn wait_seen(&self, n: usize, timeout: Duration) -> Vec<Seen> {
        let wait = async {
            loop {
                let changed = self.inner.changed.notified();
                if self.seen().len() >= n {
                    return;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        self.seen()
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.inner.log.lock().unwrap().seen.clone()
    }

    pub(crate) fn refused(&self) -> Vec<String> {
        self.inner.log.lock().unwrap().refused.clone()
    }

    pub(crate) fn requests(&self) -> u32 {
        self.inner.log.lock().unwrap().requests
    }
}

impl Inner {
    fn refuse(&self, code: StatusCode, why: String) -> Answer {
        self.log.lock().unwrap().refused.push(why);
        self.changed.notify_waiters();
        (code, "refused")
    }

    /// The checks every API shares: counted, failed on purpose first, POST, the token.
    fn common(
        &self,
        method: &Method,
        auth: Option<&str>,
        expected_auth: &str,
    ) -> Result<(), Answer> {
        self.log.lock().unwrap().requests += 1;
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            self.changed.notify_waiters();
            return Err((StatusCode::INTERNAL_SERVER_ERROR, "try again"));
        }
        if method != Method::POST {
            return Err(self.refuse(StatusCode::METHOD_NOT_ALLOWED, format!("method {method}")));
        }
        if auth != Some(expected_auth) {
            return Err(self.refuse(StatusCode::UNAUTHORIZED, "bad credentials".into()));
        }
        Ok(())
    }

    fn take(&self, seen: Seen, states: &[&str]) -> Answer {
        if !states.contains(&seen.state.as_str()) {
            return self.refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("state {}", seen.state),
            );
        }
        if seen.sha.len() != 40 || !seen.sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("sha {}", seen.sha),
            );
        }
        self.log.lock().unwrap().seen.push(seen);
        self.changed.notify_waiters();
        (StatusCode::CREATED, "{}")
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn json_body(h: &HeaderMap, body: &[u8]) -> Result<serde_json::Value, String> {
    if header(h, "content-type") != Some("application/json") {
        return Err(format!("content type {:?}", header(h, "content-type")));
    }
    serde_json::from_slice(body).map_err(|e| format!("body: {e}"))
}

fn field(v: &serde_json::Value, name: &str) -> String {
    v[name].as_str().unwrap_or_default().to_string()
}

/// GitHub: `Authorization: Bearer`, JSON `{state, description, context}`; a description
/// over 140 characters is a 422.
async fn github(
    State(s): State<Arc<Inner>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    method: Method,
    h: HeaderMap,
    body: Bytes,
) -> Answer {
    if s.provider != Provider::GitHub {
        return s.refuse(StatusCode::NOT_FOUND, "github path on another host".into());
    }
    if let Err(a) = s.common(
        &method,
        header(&h, "authorization"),
        &format!("Bearer {}", s.token),
    ) {
        return a;
    }
    if format!("{owner}/{repo}") != s.path {
        return s.refuse(StatusCode::NOT_FOUND, format!("repository {owner}/{repo}"));
    }
    let v = match json_body(&h, &body) {
        Ok(v) => v,
        Err(e) => return s.refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, e),
    };
    let description = field(&v, "description");
    if description.chars().count() > 140 {
        return s.refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "description over 140".into(),
        );
    }
    let seen = Seen {
        sha,
        state: field(&v, "state"),
        context: field(&v, "context"),
        description,
    };
    s.take(seen, &["error", "failure", "pending", "success"])
}

/// GitLab: `PRIVATE-TOKEN`, the project's URL-encoded path as its id, form parameters
/// `state`, `name`, `description`.
async fn gitlab(
    State(s): State<Arc<Inner>>,
    Path((id, sha)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    h: HeaderMap,
    body: Bytes,
) -> Answer {
    if s.provider != Provider::GitLab {
        return s.refuse(StatusCode::NOT_FOUND, "gitlab path on another host".into());
    }
    if let Err(a) = s.common(&method, header(&h, "private-token"), &s.token) {
        return a;
    }
    // The id is one path segment: the project's path with its slashes encoded.
    let encoded = s.path.replace('/', "%2F");
    if id != s.path || !uri.path().contains(&format!("/projects/{encoded}/")) {
        return s.refuse(StatusCode::NOT_FOUND, format!("project {}", uri.path()));
    }
    if header(&h, "content-type") != Some("application/x-www-form-urlencoded") {
        return s.refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not a form".into());
    }
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let seen = Seen {
        sha,
        state: get("state"),
        context: get("name"),
        description: get("description"),
    };
    s.take(
        seen,
        &["pending", "running", "success", "failed", "canceled"],
    )
}

/// Gitea and Forgejo: `Authorization: token`, JSON `{state, context, description,
/// target_url}`.
async fn gitea(
    State(s): State<Arc<Inner>>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    method: Method,
    h: HeaderMap,
    body: Bytes,
) -> Answer {
    if s.provider != Provider::Gitea {
        return s.refuse(StatusCode::NOT_FOUND, "gitea path on another host".into());
    }
    if let Err(a) = s.common(
        &method,
        header(&h, "authorization"),
        &format!("token {}", s.token),
    ) {
        return a;
    }
    if format!("{owner}/{repo}") != s.path {
        return s.refuse(StatusCode::NOT_FOUND, format!("repository {owner}/{repo}"));
    }
    let v = match json_body(&h, &body) {
        Ok(v) => v,
        Err(e) => return s.refuse(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let seen = Seen {
        sha,
        state: field(&v, "state"),
        context: field(&v, "context"),
        description: field(&v, "description"),
    };
    s.take(seen, &["pending", "success", "error", "failure", "warning"])
}
