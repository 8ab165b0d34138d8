//! The notifier: one queue and one delivery task per URL, retries with backoff, and a
//! flush for a clean shutdown.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::http::{self, Target};
use super::sign::{unix_now, Secret};
use super::{payload, CommitLinks, Event, Format, NotifyConfig, NotifyError};
use crate::http_client::{ClientOptions, HttpClient};
use crate::retry::RetryPolicy;

/// How many events may wait for one URL before new ones are dropped: enough for a
/// burst of deploys while an endpoint is retried, small enough to bound memory.
const QUEUE_CAPACITY: usize = 1000;

/// How long one delivery attempt may take, connect to status line, so a black-holed
/// endpoint costs a bounded time per attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Limits that tests shrink; production uses the defaults.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuning {
    pub(super) attempt_timeout: Duration,
    pub(super) queue_capacity: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            attempt_timeout: ATTEMPT_TIMEOUT,
            queue_capacity: QUEUE_CAPACITY,
        }
    }
}

/// One event ready to send to one URL: the event (for log lines) and its body in the
/// URL's format.
struct Job {
    event: Arc<Event>,
    body: Arc<Vec<u8>>,
}

/// One URL's queue.
struct Route {
    tx: mpsc::Sender<Job>,
    label: String,
    format: Format,
    topic: String,
}

/// What every clone of a notifier shares. Dropping the last clone drops the queues'
/// senders, so each delivery task finishes what is queued and ends.
struct Shared {
    routes: Vec<Route>,
    /// Where the repository's commits are shown, when its forge is known.
    links: Option<CommitLinks>,
    /// (event, URL) deliveries queued or in progress, for `flush`.
    pending: Arc<watch::Sender<usize>>,
    /// Tests of the callers see each event as it is sent.
    #[cfg(test)]
    tap: Option<mpsc::UnboundedSender<Arc<Event>>>,
}

/// Sends events to every configured URL in the background: never blocks or fails a deploy.
#[derive(Clone)]
pub(crate) struct Notifier {
    shared: Option<Arc<Shared>>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs stay out: webhook URLs often carry their secret in the path.
        let urls = self.shared.as_ref().map_or(0, |s| s.routes.len());
        f.debug_struct("Notifier").field("urls", &urls).finish()
    }
}

impl Notifier {
    /// Starts one background delivery task per URL (`tokio::spawn`). A URL that cannot
    /// be used (see [`check_url`]) is skipped with a warning, since nothing sent to it
    /// could arrive.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built: an unreadable or invalid CA file.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, when at least one URL is usable.
    pub(crate) fn start(config: NotifyConfig) -> Result<Notifier, NotifyError> {
        Self::start_tuned(config, Tuning::default())
    }

    pub(super) fn start_tuned(
        config: NotifyConfig,
        tuning: Tuning,
    ) -> Result<Notifier, NotifyError> {
        let NotifyConfig {
            urls,
            format,
            retry,
            ca_file,
            secret,
            repository,
        } = config;
        let targets: Vec<Target> = urls
            .iter()
            .filter_map(|url| match Target::parse_spec(url, format) {
                Ok(target) => Some(target),
                Err(error) => {
                    tracing::warn!(url = %super::redact_spec(url), error = %error, "notification URL skipped");
                    None
                }
            })
            .collect();
        if targets.is_empty() {
            return Ok(Notifier::disabled());
        }
        let client = HttpClient::new(&ClientOptions {
            ca_file,
            ..ClientOptions::tcp(tuning.attempt_timeout)
        })?;
        let pending = Arc::new(watch::Sender::new(0usize));
        let mut routes = Vec::new();
        for target in targets {
            let (tx, rx) = mpsc::channel(tuning.queue_capacity.max(1));
            let route = Route {
                tx,
                label: target.label(),
                format: target.format(),
                topic: target.topic().to_string(),
            };
            // Only berth's own JSON is signed: chat services ignore the headers.
            let secret = secret.clone().filter(|_| target.format() == Format::Json);
            tokio::spawn(deliver_all(
                client.clone(),
                Delivery {
                    target,
                    secret,
                    retry,
                },
                rx,
                pending.clone(),
            ));
            routes.push(route);
        }
        Ok(Notifier {
            shared: Some(Arc::new(Shared {
                routes,
                links: repository.as_deref().and_then(CommitLinks::from_remote),
                pending,
                #[cfg(test)]
                tap: None,
            })),
        })
    }

    /// For tests of the callers: a notifier without URLs that hands over every event
    /// as it would be sent (redacted, its commit linked when `repository` is on a
    /// known forge).
    #[cfg(test)]
    pub(crate) fn recording(
        repository: Option<&str>,
    ) -> (Notifier, mpsc::UnboundedReceiver<Arc<Event>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            routes: Vec::new(),
            links: repository.and_then(CommitLinks::from_remote),
            pending: Arc::new(watch::Sender::new(0)),
            tap: Some(tx),
        };
        (
            Notifier {
                shared: Some(Arc::new(shared)),
            },
            rx,
        )
    }

    /// A notifier that drops everything (no URL configured).
    pub(crate) fn disabled() -> Notifier {
        Notifier { shared: None }
    }

    /// Whether events go anywhere, so callers can skip building them.
    pub(crate) fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// Queues an event for every URL and returns at once. When a URL's queue is full
    /// (1000 events), the event is dropped for that URL and a warning logged.
    pub(crate) fn send(&self, event: Event) {
        let Some(shared) = &self.shared else {
            return;
        };
        // Messages quote errors, and errors may quote URLs with their credentials.
        let commit_url = event.commit_url.clone().or_else(|| {
            let links = shared.links.as_ref()?;
            links.commit(event.commit.as_deref()?)
        });
        let event = Arc::new(Event {
            message: crate::urls::redact_urls_in(&event.message),
            commit_summary: event
                .commit_summary
                .as_deref()
                .map(crate::urls::redact_urls_in),
            commit_url,
            ..event
        });
        #[cfg(test)]
        if let Some(tap) = &shared.tap {
            let _ = tap.send(event.clone());
        }
        // Each body is made once per format (and ntfy topic), shared by its URLs.
        let mut bodies: Vec<(Format, &str, Arc<Vec<u8>>)> = Vec::new();
        for route in &shared.routes {
            let made = bodies
                .iter()
                .find(|(f, t, _)| *f == route.format && *t == route.topic)
                .map(|(_, _, b)| b.clone());
            let body = match made {
                Some(body) => body,
                None => match serde_json::to_vec(&payload(&event, route.format, &route.topic)) {
                    Ok(body) => {
                        let body = Arc::new(body);
                        bodies.push((route.format, &route.topic, body.clone()));
                        body
                    }
                    Err(error) => {
                        tracing::warn!(url = %route.label, error = %error, "notification could not be serialized; dropped");
                        continue;
                    }
                },
            };
            let job = Job {
                event: event.clone(),
                body,
            };
            // Counted before it is queued, so the delivery task can never count it
            // done first.
            shared.pending.send_modify(|n| *n += 1);
            if let Err(error) = route.tx.try_send(job) {
                shared.pending.send_modify(|n| *n = n.saturating_sub(1));
                let reason = match error {
                    mpsc::error::TrySendError::Full(_) => "queue full",
                    mpsc::error::TrySendError::Closed(_) => "delivery task gone",
                };
                tracing::warn!(
                    url = %route.label,
                    kind = ?event.kind,
                    project = %event.project,
                    service = event.service.as_deref().unwrap_or("-"),
                    reason,
                    "notification dropped"
                );
            }
        }
    }

    /// Waits until every queued event was delivered or given up, or `timeout` passes
    /// (for a clean shutdown); returns whether everything was delivered or given up.
    pub(crate) async fn flush(&self, timeout: Duration) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let mut idle = shared.pending.subscribe();
        // The borrow `wait_for` returns holds a read lock: drop it at once.
        let idle = async { idle.wait_for(|n| *n == 0).await.is_ok() };
        tokio::time::timeout(timeout, idle).await.unwrap_or(false)
    }
}

/// One URL and how it is delivered to.
struct Delivery {
    target: Target,
    /// The secret `json` bodies are signed with, for this URL.
    secret: Option<Secret>,
    retry: RetryPolicy,
}

/// One URL's delivery task: events in queue order, each retried until delivered or
/// given up before the next one, so the receiver sees them in order.
async fn deliver_all(
    client: HttpClient,
    delivery: Delivery,
    mut rx: mpsc::Receiver<Job>,
    pending: Arc<watch::Sender<usize>>,
) {
    while let Some(job) = rx.recv().await {
        deliver(&client, &delivery, &job).await;
        pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Delivers one event to one URL with retries; failures end in a warning, never an
/// error. A signed body is signed again at each attempt, with that attempt's time.
async fn deliver(client: &HttpClient, delivery: &Delivery, job: &Job) {
    let Delivery {
        target,
        secret,
        retry,
    } = delivery;
    let mut delays = retry.schedule();
    let mut attempt = 1u32;
    loop {
        let headers: Vec<(&'static str, String)> = match secret {
            Some(secret) => secret.headers(unix_now(), &job.body).to_vec(),
            None => Vec::new(),
        };
        let error = match http::post(client, target, &job.body, &headers).await {
            Ok(()) => {
                tracing::debug!(url = %target.label(), kind = ?job.event.kind, attempt, "notification delivered");
                return;
            }
            Err(error) => error,
        };
        match delays.next() {
            Some(delay) => {
                tracing::debug!(
                    url = %target.label(),
                    kind = ?job.event.kind,
                    attempt,
                    error = %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "notification failed; retrying"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            None => {
                tracing::warn!(
                    url = %target.label(),
                    kind = ?job.event.kind,
                    project = %job.event.project,
                    service = job.event.service.as_deref().unwrap_or("-"),
                    attempts = attempt,
                    error = %error,
                    "notification given up"
                );
                return;
            }
        }
    }
}
