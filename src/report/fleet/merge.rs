//! Merging: every directory read one at a time ([`super::load::load_host`]), labelled once all
//! are read ([`super::input::assign`]), and the `--failed-host` names matched to them.

use std::path::Path;

use super::input::{assign, FailedHostArg, HostArg, LabelInput};
use super::load::load_host;
use super::{FailedBy, FailedHost, FleetHost, FleetReport};

/// What one directory gave.
enum Read {
    Host(Box<FleetHost>),
    Failed(String),
}

/// Merges the results directories `hosts` and the hosts `failed` named as failed into one fleet
/// report; `each` sees each directory before it is read. A directory that is missing or not a
/// results directory becomes a failed host with the reason; a `--failed-host` name equal to a
/// merged host's label marks that host failed and keeps its results; never an error.
pub fn merge(
    hosts: &[HostArg],
    failed: &[FailedHostArg],
    each: &mut dyn FnMut(&Path),
) -> FleetReport {
    let read: Vec<Read> = hosts
        .iter()
        .map(|a| {
            each(&a.dir);
            match load_host(&a.dir) {
                Ok(h) => Read::Host(Box::new(h)),
                Err(e) => Read::Failed(e.to_string()),
            }
        })
        .collect();
    let labels = assign(
        &hosts
            .iter()
            .zip(&read)
            .map(|(a, r)| LabelInput {
                given: a.label.as_deref(),
                hostname: match r {
                    Read::Host(h) => h.facts.as_ref().and_then(|f| f.local.hostname.as_deref()),
                    Read::Failed(_) => None,
                },
                dir: &a.dir,
            })
            .collect::<Vec<_>>(),
    );
    let mut merged = Vec::new();
    let mut failed_hosts = Vec::new();
    for ((a, r), (label, source)) in hosts.iter().zip(read).zip(labels) {
        match r {
            Read::Host(mut h) => {
                h.label = label;
                h.label_source = source;
                merged.push(*h);
            }
            Read::Failed(reason) => failed_hosts.push(FailedHost {
                label,
                dir: Some(a.dir.display().to_string()),
                by: FailedBy::Directory,
                reason,
            }),
        }
    }
    for f in failed {
        let reason = f.reason_text();
        if let Some(h) = merged.iter_mut().find(|h| h.label == f.name) {
            h.reported_failed = Some(match h.reported_failed.take() {
                Some(r) => format!("{r}; {reason}"),
                None => reason,
            });
        } else if let Some(x) = failed_hosts.iter_mut().find(|x| x.label == f.name) {
            x.reason = format!("{}; {reason}", x.reason);
        } else {
            failed_hosts.push(FailedHost {
                label: f.name.clone(),
                dir: None,
                by: FailedBy::Option,
                reason,
            });
        }
    }
    FleetReport::new(merged, failed_hosts)
}
