//! The executor against the in-memory engine, on tokio's paused clock: rollouts and
//! their rollbacks call by call, the health gate to the millisecond, migrations across
//! crashes, and the fleet's waits.

mod apply;
mod container;
mod fleet;
mod gate;
mod migrate;
mod redact;
mod rollout;
pub(crate) mod support;
