//! Docker Compose files as desired state.

pub mod interpolate;
