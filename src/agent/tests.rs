//! The agent's loop on the in-memory engine and tokio's paused clock: coalescing,
//! backoff, healing, pauses, degraded coordination and shutdown, each asserted on what
//! the engine was asked to do and when.

mod commit_status;
mod engine_away;
mod fall_back;
mod parts;
mod reconcile;
mod registry_away;
mod support;
