/// The allocator of every program built on this crate (the agent, the CLI, the tests and
/// the benchmarks, so that they measure what runs). Loading a desired state is mostly
/// small allocations (a string per YAML scalar, a path per node); mimalloc serves them in
/// about three quarters of the time the system allocator takes (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod adopt;
pub mod agent;
pub mod api;
pub mod cli;
pub mod demo;
pub mod executor;
pub mod host;
pub mod http_client;
pub mod ledger;
pub mod model;
pub mod notify;
pub mod plan;
pub mod retry;
pub mod runtime;
pub mod source;
pub mod status;
pub mod trigger;
pub mod urls;
