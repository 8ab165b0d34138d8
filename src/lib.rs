pub mod cli;
pub mod model;
pub mod plan;
pub mod runtime;
