//! This machine, as berth names it when the operator does not (`--host`): in
//! placement, in the ledger's records, in notifications.

/// This machine's name: the kernel's hostname, or `localhost` when it cannot be read.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
