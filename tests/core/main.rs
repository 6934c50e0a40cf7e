//! Integration tests of the core library by topic: the wire format between agent and runner
//! (`wire`), and the reports built from run records (`report`, on the deterministic runs of
//! `pinlat_test_infra::fixtures`). One test binary, a module per topic.

mod fixtures_trace;
mod report;
mod trend;
mod wire;
