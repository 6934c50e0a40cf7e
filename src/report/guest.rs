//! The guests' kernels as their agents reported them (`hello.facts`): whether each was
//! PREEMPT_RT. A guest kernel without PREEMPT_RT adds its own preemption latency to every
//! number of the report, whatever the host's layout; every output says so in its header.

use serde::{Deserialize, Serialize};

use crate::result::RunRecord;

/// One guest kernel the agents reported, with how many runs ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestKernel {
    /// Guest name.
    pub guest: String,
    /// `uname -r` in the guest.
    pub kernel_release: String,
    /// `/sys/kernel/realtime` was 1.
    pub preempt_rt: bool,
    /// Runs in which that guest reported that kernel.
    pub runs: usize,
}

/// What the report knows of its guests' kernels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestKernels {
    /// Each distinct (guest, kernel, PREEMPT_RT), in order of appearance.
    pub kernels: Vec<GuestKernel>,
    /// Guests of runs whose agent sent no hello (a failed boot): kernel unknown.
    pub unknown: usize,
}

/// The warning every output carries in its header when a guest was not PREEMPT_RT.
pub const NOT_RT_WARNING: &str = "the guest kernel was not PREEMPT_RT: its own preemption latency is in these numbers; no layout can fix it";

impl GuestKernels {
    /// Adds the guests of one run.
    pub fn add(&mut self, rec: &RunRecord) {
        for g in &rec.guests {
            let Some(h) = &g.hello else {
                self.unknown += 1;
                continue;
            };
            let f = &h.facts;
            match self.kernels.iter_mut().find(|k| {
                k.guest == g.guest
                    && k.kernel_release == f.kernel_release
                    && k.preempt_rt == f.preempt_rt
            }) {
                Some(k) => k.runs += 1,
                None => self.kernels.push(GuestKernel {
                    guest: g.guest.clone(),
                    kernel_release: f.kernel_release.clone(),
                    preempt_rt: f.preempt_rt,
                    runs: 1,
                }),
            }
        }
    }

    /// `Some(true)`: every reported guest kernel was PREEMPT_RT; `Some(false)`: one was not;
    /// `None`: no agent said.
    pub fn preempt_rt(&self) -> Option<bool> {
        if self.kernels.is_empty() {
            None
        } else {
            Some(self.kernels.iter().all(|k| k.preempt_rt))
        }
    }

    /// `yes`, `no` or `unknown`.
    pub fn preempt_rt_word(&self) -> &'static str {
        match self.preempt_rt() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }
    }

    /// The header line: `Guest kernels: guest rt: 6.1.0-rt-amd64 PREEMPT_RT (24 run(s))`.
    pub fn sentence(&self) -> String {
        let mut parts: Vec<String> = self
            .kernels
            .iter()
            .map(|k| {
                format!(
                    "guest {}: {} {} ({} run(s))",
                    k.guest,
                    k.kernel_release,
                    if k.preempt_rt {
                        "PREEMPT_RT"
                    } else {
                        "NOT PREEMPT_RT"
                    },
                    k.runs
                )
            })
            .collect();
        if self.unknown > 0 {
            parts.push(format!(
                "unknown for {} guest run(s) without an agent hello",
                self.unknown
            ));
        }
        format!("Guest kernels: {}", parts.join("; "))
    }

    /// [`NOT_RT_WARNING`] naming the guests, when one was not PREEMPT_RT.
    pub fn warning(&self) -> Option<String> {
        let not_rt: Vec<String> = self
            .kernels
            .iter()
            .filter(|k| !k.preempt_rt)
            .map(|k| format!("guest {}: {}", k.guest, k.kernel_release))
            .collect();
        (!not_rt.is_empty()).then(|| format!("{NOT_RT_WARNING} ({})", not_rt.join(", ")))
    }
}
