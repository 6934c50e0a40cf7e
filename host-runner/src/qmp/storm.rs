//! The `mgmt-storm` scenario's queries: expensive QMP commands a management stack may send,
//! issued round-robin and back to back on one monitor, so QEMU's main loop (where QMP commands
//! run, holding the big QEMU lock) is as busy as the monitor can make it.
//!
//! A query is written as QMP's command name, optionally followed by its `arguments` as a JSON
//! object: `query-block`, `query-stats {"target":"vm"}`,
//! `human-monitor-command {"command-line":"info mtree"}` — the spelling `mgmt-poll` records
//! its queries in. A query this QEMU rejects on its first call (`CommandNotFound`, or an
//! argument it does not know) is dropped and listed with QEMU's error; later errors count.

use std::io::{Read, Write};
use std::time::Instant;

use serde_json::Value;

use super::{QmpClient, QmpError};

/// The default storm: what libvirt asks for block, CPU and statistics reporting, plus the
/// memory-region tree through HMP (`info mtree`: the query measured to stall a busy-polling
/// vCPU for 134 ms when the emulator shared its pCPU, issue 12) and the PCI tree.
pub const DEFAULT_QUERIES: &[&str] = &[
    "query-block",
    "query-cpus-fast",
    r#"query-stats {"target":"vm"}"#,
    r#"query-stats {"target":"vcpu"}"#,
    r#"human-monitor-command {"command-line":"info mtree"}"#,
    "query-blockstats",
    "query-pci",
    "query-named-block-nodes",
];

/// A query that is not a QMP command name with optional JSON object arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Bad QMP query \"{query}\": {why}")]
pub struct BadQuery {
    /// The query as written.
    pub query: String,
    /// What is wrong, and how it should look.
    pub why: String,
}

/// One query: a command and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The command, e.g. `query-stats`.
    pub command: String,
    /// Its `arguments`, when it has any.
    pub arguments: Option<Value>,
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.arguments {
            Some(a) => write!(f, "{} {a}", self.command),
            None => f.write_str(&self.command),
        }
    }
}

/// Parses `command [{json arguments}]`.
pub fn parse_query(text: &str) -> Result<Query, BadQuery> {
    let bad = |why: &str| BadQuery {
        query: text.to_owned(),
        why: why.to_owned(),
    };
    let text_t = text.trim();
    let (command, rest) = match text_t.find(char::is_whitespace) {
        Some(i) => (&text_t[..i], text_t[i..].trim()),
        None => (text_t, ""),
    };
    if command.is_empty()
        || !command
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad(
            "start with a QMP command name, e.g. query-block or query-stats {\"target\":\"vm\"}",
        ));
    }
    let arguments = if rest.is_empty() {
        None
    } else {
        let v: Value = serde_json::from_str(rest)
            .map_err(|e| bad(&format!("the arguments are not JSON ({e})")))?;
        if !v.is_object() {
            return Err(bad("the arguments must be a JSON object"));
        }
        Some(v)
    };
    Ok(Query {
        command: command.to_owned(),
        arguments,
    })
}

/// What one call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// A `return`, after `latency_ns`.
    Ok {
        /// Send to reply, ns.
        latency_ns: u64,
    },
    /// An error reply to a query that had worked before.
    Error,
    /// The query's first call failed: it is dropped ([`Storm::unsupported`]).
    Dropped,
}

/// One call of the storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// Index of the query in [`Storm::queries`] order as given to [`Storm::new`].
    pub query: usize,
    /// What happened.
    pub outcome: CallOutcome,
}

/// The round-robin over the queries, dropping the ones this QEMU does not have.
#[derive(Debug, Clone)]
pub struct Storm {
    queries: Vec<Query>,
    /// Per query: still issued, answered at least once.
    live: Vec<(bool, bool)>,
    unsupported: Vec<String>,
    next: usize,
}

impl Storm {
    /// A storm over `queries`, in that order.
    pub fn new(queries: Vec<Query>) -> Self {
        Storm {
            live: vec![(true, false); queries.len()],
            queries,
            unsupported: Vec::new(),
            next: 0,
        }
    }

    /// Whether any query is still issued.
    pub fn has_queries(&self) -> bool {
        self.live.iter().any(|(l, _)| *l)
    }

    /// Every query given, in order (dropped ones included).
    pub fn queries(&self) -> &[Query] {
        &self.queries
    }

    /// Whether query `i` was dropped on its first call.
    pub fn dropped(&self, i: usize) -> bool {
        self.live.get(i).is_some_and(|(live, _)| !live)
    }

    /// Queries dropped on their first call, with QEMU's error.
    pub fn unsupported(&self) -> &[String] {
        &self.unsupported
    }

    /// Issues the next query. A transport failure (timeout, closed monitor) is returned as is;
    /// `None` when no query is left.
    pub fn call<S: Read + Write>(
        &mut self,
        qmp: &mut QmpClient<S>,
    ) -> Option<Result<Call, QmpError>> {
        let n = self.queries.len();
        let i = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|&i| self.live[i].0)?;
        self.next = (i + 1) % n;
        let q = &self.queries[i];
        let started = Instant::now();
        let result = qmp.execute(&q.command, q.arguments.clone());
        let latency_ns = started.elapsed().as_nanos() as u64;
        Some(match result {
            Ok(_) => {
                self.live[i].1 = true;
                Ok(Call {
                    query: i,
                    outcome: CallOutcome::Ok { latency_ns },
                })
            }
            Err(QmpError::Command { class, desc, .. }) if !self.live[i].1 => {
                self.live[i].0 = false;
                self.unsupported.push(format!("{q} ({class}: {desc})"));
                Ok(Call {
                    query: i,
                    outcome: CallOutcome::Dropped,
                })
            }
            Err(QmpError::Command { .. }) => Ok(Call {
                query: i,
                outcome: CallOutcome::Error,
            }),
            Err(e) => Err(e),
        })
    }
}
