//! The `mgmt-poll` scenario's query set: what the management stack (libvirt's `domstats`,
//! nova, collectd) asks QEMU's monitor every few seconds, issued round by round.

use std::io::{Read, Write};

use serde_json::{json, Value};

use super::{QmpClient, QmpError};

/// What one `mgmt-poll` round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollRound {
    /// Commands issued.
    pub commands: u32,
}

/// The `mgmt-poll` scenario's QMP load: each round issues the queries libvirt's `domstats`
/// monitoring issues — `query-status`, `query-cpus-fast`, `query-blockstats` and, where
/// QEMU has it, `query-stats` for `vm` and `vcpu`. Queries QEMU rejects on the first round
/// (`CommandNotFound`, or an unsupported argument) are dropped and listed in
/// [`MgmtPoll::unsupported`].
#[derive(Debug, Clone)]
pub struct MgmtPoll {
    queries: Vec<(&'static str, Option<Value>)>,
    unsupported: Vec<String>,
    probed: bool,
}

impl Default for MgmtPoll {
    fn default() -> Self {
        MgmtPoll {
            queries: vec![
                ("query-status", None),
                ("query-cpus-fast", None),
                ("query-blockstats", None),
                ("query-stats", Some(json!({ "target": "vm" }))),
                ("query-stats", Some(json!({ "target": "vcpu" }))),
            ],
            unsupported: Vec::new(),
            probed: false,
        }
    }
}

impl MgmtPoll {
    /// A poller with libvirt's query set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Issues one round of queries.
    pub fn round<S: Read + Write>(
        &mut self,
        qmp: &mut QmpClient<S>,
    ) -> Result<PollRound, QmpError> {
        let mut round = PollRound::default();
        let mut failure = None;
        let mut keep = Vec::with_capacity(self.queries.len());
        for (cmd, args) in std::mem::take(&mut self.queries) {
            if failure.is_some() {
                keep.push((cmd, args));
                continue;
            }
            round.commands += 1;
            match qmp.execute(cmd, args.clone()) {
                Ok(_) => keep.push((cmd, args)),
                Err(QmpError::Command { class, .. }) if !self.probed => {
                    let what = match &args {
                        Some(a) => format!("{cmd} {a} ({class})"),
                        None => format!("{cmd} ({class})"),
                    };
                    self.unsupported.push(what);
                }
                Err(e) => {
                    keep.push((cmd, args));
                    failure = Some(e);
                }
            }
        }
        self.queries = keep;
        match failure {
            Some(e) => Err(e),
            None => {
                self.probed = true;
                Ok(round)
            }
        }
    }

    /// Queries dropped because QEMU rejected them, with QEMU's error class.
    pub fn unsupported(&self) -> &[String] {
        &self.unsupported
    }

    /// The queries issued per round, e.g. `query-stats {"target":"vm"}`.
    pub fn queries(&self) -> Vec<String> {
        self.queries
            .iter()
            .map(|(c, a)| match a {
                Some(a) => format!("{c} {a}"),
                None => (*c).to_owned(),
            })
            .collect()
    }
}
