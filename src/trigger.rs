//! What wakes the agent's loop. The loop's own triggers and the HTTP listener's (a
//! webhook, a control request) are one kind, so it sits beside both.

/// What woke the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// First run.
    Start,
    /// The watched local repository changed.
    Watch,
    /// The poll interval passed.
    Poll,
    /// A verified webhook arrived.
    Webhook,
    /// Docker reported a container of the project dying, going away or changing health.
    DockerEvent,
    /// The periodic full resync.
    Resync,
    /// A failed service's backoff ran out.
    Retry,
    /// An operator paused or resumed something.
    Control,
    /// A file of the project's env directory changed on the host.
    EnvDir,
}

impl Trigger {
    /// The label in metrics and logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Watch => "watch",
            Trigger::Poll => "poll",
            Trigger::Webhook => "webhook",
            Trigger::DockerEvent => "docker-event",
            Trigger::Resync => "resync",
            Trigger::Retry => "retry",
            Trigger::Control => "control",
            Trigger::EnvDir => "env-dir",
        }
    }
}
