//! Integration tests of the core library by topic: the wire format between agent and runner
//! (`wire`, and the runner's commands to the agent: `wire_commands`), the reports built from run records (`report`, on the deterministic runs of
//! `pinlat_test_infra::fixtures`) and the fleet report merged from many hosts' results
//! directories (`fleet`). One test binary, a module per topic.

mod fixtures_trace;
mod fleet;
mod report;
mod trend;
mod wire;
mod wire_commands;
