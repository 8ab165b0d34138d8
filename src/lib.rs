pub mod cli;
pub mod executor;
pub mod ledger;
pub mod model;
pub mod plan;
pub mod runtime;
