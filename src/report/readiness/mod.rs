//! Guest readiness and the overall verdict: the guest's side of a realtime stack judged the way
//! `pinlat doctor` judges the host (ok, warn or fail, each with its fix), from the facts each
//! agent's hello carries ([`crate::wire::GuestTuning`]), one judgement per guest and variant;
//! then one verdict for the report: "full-stack RT" (host and guest ready), "host-only" (the
//! host ready, a guest not) or "not ready" (the host not ready).
//!
//! Rules (README "Reading the readiness verdict"):
//! - a guest is ready when none of its checks fails and none is unknown (warnings allowed);
//!   a fact its agent did not report, or its kernel does not have, is unknown, never ok;
//! - the host is ready when `doctor.json` is there and none of its checks failed
//!   ([`super::hostchecks`]; warnings allowed);
//! - the verdict is judged per variant (its guests' readiness with the host's), and the report's
//!   one verdict is the best a variant reached, naming the variants that reached it.
//!
//! The section exists when at least one hello carried the facts; reports of agents before them
//! have none. The checks follow tuned's `realtime-virtual-guest` profile (see
//! `crate::config::variant::CmdlinePreset::RealtimeVirtualGuest`).

use serde::{Deserialize, Serialize};

mod checks;

use super::hostchecks::HostChecks;
use super::text::{Align, Cell, Table};
use crate::cpuset::CpuSet;
use crate::result::RunRecord;
pub use checks::judge;

/// How one guest fact is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As a realtime guest needs it.
    Ok,
    /// Adds latency or makes it less repeatable; the guest still counts as ready.
    Warn,
    /// Not known: the agent did not report it, or the guest kernel has no such file.
    Unknown,
    /// The guest is not a realtime guest until this is fixed.
    Fail,
}

impl Status {
    /// `ok`, `warn`, `unknown`, `FAIL`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Unknown => "unknown",
            Status::Fail => "FAIL",
        }
    }
}

/// One judged guest fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `guest.<fact>`, e.g. `guest.nohz_full`.
    pub id: String,
    /// The judgement.
    pub status: Status,
    /// What the guest showed.
    pub found: String,
    /// What to do about it (empty when ok).
    pub fix: String,
}

impl Check {
    pub(crate) fn new(
        id: &str,
        status: Status,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            id: id.to_string(),
            status,
            found: found.into(),
            fix: if status == Status::Ok {
                String::new()
            } else {
                fix.into()
            },
        }
    }
}

/// One guest of one variant, judged from the run whose reported facts judged worst (most
/// failing, then unknown, then warning checks; the first of equals): facts that differ
/// between runs never hide behind a good one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestReadiness {
    /// The variant (`None`: the config has no variants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Guest name.
    pub guest: String,
    /// The run the facts shown were read from.
    pub from_run: String,
    /// Runs of this guest and variant whose agent reported the facts.
    pub runs: usize,
    /// The RT vCPUs judged (the agent's `rt_cpus`).
    pub rt_vcpus: String,
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
    /// No check failed and none is unknown.
    pub ready: bool,
}

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The host is not ready.
    NotReady,
    /// The host is ready, a guest is not.
    HostOnly,
    /// Host and every guest ready.
    FullStackRt,
}

impl Verdict {
    /// `full-stack RT`, `host-only`, `not ready`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::FullStackRt => "full-stack RT",
            Verdict::HostOnly => "host-only",
            Verdict::NotReady => "not ready",
        }
    }
}

/// One variant's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantVerdict {
    /// The variant (`None`: the config has no variants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Its verdict.
    pub verdict: Verdict,
}

/// The report's readiness section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Whether the host is ready (`doctor.json` present, no check failed).
    pub host_ready: bool,
    /// Why, in one sentence.
    pub host: String,
    /// Every guest of every variant.
    pub guests: Vec<GuestReadiness>,
    /// Per variant, in order of appearance.
    pub variants: Vec<VariantVerdict>,
    /// The report's one verdict: the best a variant reached.
    pub verdict: Verdict,
    /// The verdict in one sentence, with the variants that reached it.
    pub statement: String,
    /// Under TCG: the verdict is about configuration, not hardware latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcg_note: Option<String>,
}

/// The note every readiness verdict made under TCG carries.
pub const TCG_NOTE: &str = "under TCG this verdict is about configuration (what the host and guest kernels were told and applied), not hardware latency";

/// How bad a judgement is, to compare two: its failing, then unknown, then warning checks.
fn badness(checks: &[Check]) -> (usize, usize, usize) {
    let n = |s: Status| checks.iter().filter(|c| c.status == s).count();
    (n(Status::Fail), n(Status::Unknown), n(Status::Warn))
}

impl GuestReadiness {
    /// One run's judgement of one guest.
    fn new(rec: &RunRecord, guest: &str, rt: CpuSet, checks: Vec<Check>) -> Self {
        let ready = checks
            .iter()
            .all(|c| matches!(c.status, Status::Ok | Status::Warn));
        GuestReadiness {
            variant: rec.variant.clone(),
            guest: guest.to_string(),
            from_run: rec.name.clone(),
            runs: 1,
            rt_vcpus: rt.to_string(),
            checks,
            ready,
        }
    }
}

/// Collects the guests' readiness while the report streams the runs.
#[derive(Debug, Default)]
pub struct Acc {
    guests: Vec<GuestReadiness>,
}

impl Acc {
    /// Adds the guests of one run whose agents reported the facts.
    pub fn add(&mut self, rec: &RunRecord) {
        for g in &rec.guests {
            let Some(h) = &g.hello else { continue };
            if h.facts.tuning.is_none() {
                continue;
            }
            let rt: CpuSet = h.config.rt_cpus.iter().copied().collect();
            let checks = judge(&h.facts, &rt);
            let judged = GuestReadiness::new(rec, &g.guest, rt, checks);
            match self
                .guests
                .iter_mut()
                .find(|r| r.guest == g.guest && r.variant == rec.variant)
            {
                None => self.guests.push(judged),
                // Shown: the run whose facts judged worst (the first of equals).
                Some(seen) => {
                    let runs = seen.runs + 1;
                    if badness(&judged.checks) > badness(&seen.checks) {
                        *seen = judged;
                    }
                    seen.runs = runs;
                }
            }
        }
    }

    /// The section, with the host's checks; `None` when no agent reported the facts.
    pub fn finish(self, host: &HostChecks, tcg: bool) -> Option<Readiness> {
        if self.guests.is_empty() {
            return None;
        }
        let (host_ready, host_text) = host_readiness(host);
        let mut variants: Vec<VariantVerdict> = Vec::new();
        for g in &self.guests {
            if variants.iter().any(|v| v.variant == g.variant) {
                continue;
            }
            let guests_ready = self
                .guests
                .iter()
                .filter(|o| o.variant == g.variant)
                .all(|o| o.ready);
            variants.push(VariantVerdict {
                variant: g.variant.clone(),
                verdict: match (host_ready, guests_ready) {
                    (false, _) => Verdict::NotReady,
                    (true, false) => Verdict::HostOnly,
                    (true, true) => Verdict::FullStackRt,
                },
            });
        }
        let verdict = variants
            .iter()
            .map(|v| v.verdict)
            .max()
            .unwrap_or(Verdict::NotReady);
        let statement = statement(verdict, &variants, &self.guests);
        Some(Readiness {
            host_ready,
            host: host_text,
            guests: self.guests,
            variants,
            verdict,
            statement,
            tcg_note: tcg.then(|| TCG_NOTE.to_string()),
        })
    }
}

impl Readiness {
    /// The section's sentences before the tables: the verdict, the host's side, each variant's
    /// verdict when there are variants, and the TCG note.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![
            format!("Verdict: {}.", self.statement),
            format!("Host: {}.", self.host),
        ];
        if self.variants.iter().any(|v| v.variant.is_some()) {
            let per: Vec<String> = self
                .variants
                .iter()
                .map(|v| {
                    format!(
                        "{}: {}",
                        v.variant.as_deref().unwrap_or("-"),
                        v.verdict.label()
                    )
                })
                .collect();
            out.push(format!("Per variant: {}.", per.join("; ")));
        }
        if let Some(n) = &self.tcg_note {
            out.push(format!("Note: {n}."));
        }
        out
    }

    /// Per guest and variant: its heading and its checks as a table.
    pub(crate) fn tables(&self) -> Vec<(String, Table)> {
        self.guests
            .iter()
            .map(|g| {
                let heading = format!(
                    "Guest {}{}: {} (RT vCPUs {}; from {}, {} run(s) reported)",
                    g.guest,
                    g.variant
                        .as_deref()
                        .map(|v| format!(", variant {v}"))
                        .unwrap_or_default(),
                    if g.ready { "ready" } else { "not ready" },
                    g.rt_vcpus,
                    g.from_run,
                    g.runs
                );
                let mut t = Table::new([
                    ("check", Align::Left),
                    ("status", Align::Left),
                    ("found", Align::Left),
                    ("fix", Align::Left),
                ]);
                for c in &g.checks {
                    t.row([
                        Cell::from(&c.id),
                        Cell::from(c.status.label()),
                        Cell::from(c.found.replace('|', "/")),
                        Cell::from(c.fix.replace('|', "/")),
                    ]);
                }
                (heading, t)
            })
            .collect()
    }

    /// The Markdown section (`## Guest readiness`).
    pub fn markdown(&self) -> String {
        let mut o = String::from("## Guest readiness\n\n");
        for l in self.lines() {
            o.push_str(&format!("{l}\n\n"));
        }
        for (heading, t) in self.tables() {
            o.push_str(&format!("### {heading}\n\n{}\n", t.markdown()));
        }
        o
    }

    /// The HTML section.
    pub fn html(&self) -> String {
        let esc = super::escape_xml;
        let mut o = String::from("<h2>Guest readiness</h2>\n");
        for l in self.lines() {
            o.push_str(&format!("<p>{}</p>\n", esc(&l)));
        }
        for (heading, t) in self.tables() {
            o.push_str(&format!("<h3>{}</h3>\n{}", esc(&heading), t.html()));
        }
        o
    }
}

/// Whether the host is ready, and why, from the doctor's checks.
fn host_readiness(host: &HostChecks) -> (bool, String) {
    match &host.doctor {
        None => (
            false,
            "host not checked: no doctor.json in the results directory (pinlat run writes it; pinlat doctor --out DIR)".into(),
        ),
        Some(d) if d.fail == 0 => (
            true,
            format!(
                "host ready: pinlat doctor found no failing check ({} passed, {} warned)",
                d.pass, d.warn
            ),
        ),
        Some(d) => {
            let failed: Vec<&str> = d
                .problems
                .iter()
                .filter(|c| c.status == "fail")
                .map(|c| c.id.as_str())
                .collect();
            (
                false,
                format!(
                    "host not ready: pinlat doctor failed {} check(s) ({})",
                    d.fail,
                    failed.join(", ")
                ),
            )
        }
    }
}

fn statement(verdict: Verdict, variants: &[VariantVerdict], guests: &[GuestReadiness]) -> String {
    let named: Vec<&str> = variants
        .iter()
        .filter(|v| v.verdict == verdict)
        .filter_map(|v| v.variant.as_deref())
        .collect();
    let which = if named.is_empty() {
        String::new()
    } else {
        format!(" with variant(s) {}", named.join(", "))
    };
    let not_ready: Vec<String> = guests
        .iter()
        .filter(|g| !g.ready)
        .map(|g| match &g.variant {
            Some(v) => format!("{} ({v})", g.guest),
            None => g.guest.clone(),
        })
        .collect();
    match verdict {
        Verdict::FullStackRt => format!("full-stack RT{which}: host and guest side ready"),
        Verdict::HostOnly => format!(
            "host-only: the host is ready, the guest side is not (guest(s) {})",
            not_ready.join(", ")
        ),
        Verdict::NotReady => {
            let ready: Vec<String> = variants
                .iter()
                .filter(|v| {
                    guests
                        .iter()
                        .filter(|g| g.variant == v.variant)
                        .all(|g| g.ready)
                })
                .map(|v| v.variant.clone().unwrap_or_else(|| "the guest".into()))
                .collect();
            let guest_side = if ready.is_empty() {
                "nor is the guest side".to_string()
            } else {
                format!("the guest side is ready ({})", ready.join(", "))
            };
            format!("not ready: the host is not ready, {guest_side}")
        }
    }
}

#[cfg(test)]
mod tests;
