//! berth: GitOps for plain Docker hosts. The binary (`src/main.rs`) calls [`cli::run`];
//! the library's public surface is what the binary, the tests and the benchmarks use:
//! the desired state ([`model`]), planning ([`plan`]), the engine ([`runtime`]) and the
//! ledger ([`ledger`]). Everything else is the crate's own. ARCHITECTURE.md draws the
//! rooms and the arrows between them.

#![warn(missing_docs, unreachable_pub)]

pub(crate) mod adopt;
pub(crate) mod agent;
pub(crate) mod api;
pub(crate) mod bump;
pub mod cli;
pub(crate) mod commit_status;
pub(crate) mod demo;
pub(crate) mod executor;
pub(crate) mod host;
pub(crate) mod http_client;
pub mod ledger;
pub mod model;
pub(crate) mod notify;
pub mod page;
pub mod plan;
pub(crate) mod retry;
pub mod runtime;
pub mod secrets;
pub(crate) mod source;
pub(crate) mod status;
pub(crate) mod trigger;
pub(crate) mod urls;
