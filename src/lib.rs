pub mod cli;
pub mod executor;
pub mod model;
pub mod plan;
pub mod runtime;
