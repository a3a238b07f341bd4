//! End-to-end tests of the real `carnet` binary: first start, refusals to start (each
//! with its exit code and sentence), TLS, graceful shutdown, operator commands.

mod audit;
mod backup;
mod bench_memory;
mod cli;
mod device;
mod postgres;
mod serve;
mod support;
