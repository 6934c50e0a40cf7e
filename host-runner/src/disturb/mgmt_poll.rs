//! `mgmt-poll`: the management stack's QMP polling, as libvirt/nova/collectd monitoring does
//! (the query set is [`crate::qmp::MgmtPoll`]'s), at `rate_hz` on a second QMP monitor of
//! every guest, one poller thread per guest, so polling never shares a connection with the
//! runner's control commands and every guest of a run is disturbed alike.
//!
//! A guest libvirt launched is polled through libvirt instead, as nova, collectd and
//! Prometheus' libvirt exporter do: `virsh domstats` (`virConnectGetAllDomainStats`) at the
//! same rate over one connection per guest ([`crate::libvirt::poll`]), and libvirt makes the
//! QMP queries it needs on its own monitor: such a guest gets no second monitor.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinlat::config::ScenarioKind;
use pinlat::cpuset::CpuSet;
use pinlat::kinds::LauncherKind;
use pinlat::result::MgmtPollStats;

use super::monitor::{self, ConnectError, Lifecycle, MonitorLinks, Switches};
use super::{Disturbance, DisturbanceError, Outcome, Targets};
use crate::qemu::VmSpec;
use crate::qmp::MgmtPoll;

/// The pollers of one run.
#[derive(Debug)]
pub struct MgmtPollLoad {
    rate_hz: u32,
    /// Who starts the guests: libvirt's are polled through libvirt.
    launcher: LauncherKind,
    /// Polling begins at start, without waiting for the go.
    life: Lifecycle,
    /// Shut down at stop ([`MonitorLinks`]).
    links: MonitorLinks,
    threads: Vec<JoinHandle<Result<MgmtPollStats, ConnectError>>>,
}

impl MgmtPollLoad {
    /// Polling at `rate_hz` rounds per second per guest, of guests `launcher` starts.
    pub fn new(rate_hz: u32, launcher: LauncherKind) -> Self {
        MgmtPollLoad {
            rate_hz,
            launcher,
            life: Lifecycle::default(),
            links: MonitorLinks::default(),
            threads: Vec::new(),
        }
    }
}

impl Disturbance for MgmtPollLoad {
    fn prepare_vm(&self, _index: usize, vm: &mut VmSpec) {
        if self.launcher == LauncherKind::Qemu {
            monitor::want_monitor(vm);
        }
    }

    fn start(&mut self, targets: &Targets) -> Result<(), DisturbanceError> {
        for (guest, socket) in targets.mgmt_sockets.iter().enumerate() {
            let libvirt = targets.libvirt.get(guest).cloned().flatten();
            let spawned = match libvirt {
                Some(domain) => libvirt_poller(
                    domain,
                    self.rate_hz,
                    self.life.switches().clone(),
                    self.links.clone(),
                ),
                None => {
                    let socket = socket.clone().ok_or(DisturbanceError::NoMonitor {
                        scenario: ScenarioKind::MgmtPoll,
                        guest,
                    })?;
                    poller(
                        socket,
                        self.rate_hz,
                        self.life.switches().clone(),
                        self.links.clone(),
                    )
                }
            };
            let h = spawned.map_err(|source| DisturbanceError::Spawn {
                scenario: ScenarioKind::MgmtPoll,
                what: format!("the poll thread of guest {guest}"),
                source,
            })?;
            self.threads.push(h);
        }
        Ok(())
    }

    fn stop(&mut self) -> Outcome {
        let (rate_hz, links, threads) = (self.rate_hz, &self.links, &mut self.threads);
        self.life.stop(|_| {
            links.shut_all();
            outcome(rate_hz, std::mem::take(threads))
        })
    }
}

/// What the pollers at `rate_hz` did: each guest's thread joined.
fn outcome(rate_hz: u32, threads: Vec<JoinHandle<Result<MgmtPollStats, ConnectError>>>) -> Outcome {
    let mut outcome = Outcome::default();
    let mut total = MgmtPollStats {
        rate_hz,
        ..Default::default()
    };
    let mut problems = Vec::new();
    for (guest, h) in threads.into_iter().enumerate() {
        let what = format!("the poll thread of guest {guest}");
        let Some(stats) = monitor::join(h, ScenarioKind::MgmtPoll, &guest, &what, &mut problems)
        else {
            outcome.per_guest_mgmt_poll.push(None);
            continue;
        };
        // A mgmt-poll run whose poller did not poll is not a mgmt-poll measurement.
        if stats.rounds == 0 {
            problems.push(format!(
                "mgmt-poll: no poll round completed on guest {guest} ({} errors)",
                stats.errors
            ));
        } else if stats.errors > stats.rounds {
            problems.push(format!(
                "mgmt-poll: {} of {} poll rounds failed on guest {guest}",
                stats.errors,
                stats.rounds + stats.errors
            ));
        }
        total.rounds += stats.rounds;
        total.errors += stats.errors;
        if total.queries.is_empty() {
            total.queries = stats.queries.clone();
        }
        outcome.per_guest_mgmt_poll.push(Some(stats));
    }
    outcome.mgmt_poll = Some(total);
    outcome.problem = (!problems.is_empty()).then(|| problems.join("; "));
    outcome
}

/// Calls `round` at `rate_hz` until stopped; the counts of rounds that succeeded and failed
/// (the caller's first round failing ten times without a success gives up).
fn at_rate<E>(
    rate_hz: u32,
    switches: &Switches,
    stats: &mut MgmtPollStats,
    mut round: impl FnMut() -> Result<(), E>,
) {
    let period = Duration::from_secs_f64(1.0 / f64::from(rate_hz.max(1)));
    let mut next = Instant::now();
    while !switches.stopped() {
        match round() {
            Ok(()) => stats.rounds += 1,
            // QEMU going away at the end of the run is not the poller's failure.
            Err(_) if switches.stopped() => break,
            Err(_) => {
                stats.errors += 1;
                if stats.errors > 10 && stats.rounds == 0 {
                    break;
                }
            }
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

/// One guest's poller through libvirt: `virsh domstats` at `rate_hz` until stopped. Its virsh
/// is kept in `links`, so a round blocked on a daemon that stopped answering ends at stop.
fn libvirt_poller(
    domain: crate::libvirt::LibvirtDomain,
    rate_hz: u32,
    switches: Switches,
    links: MonitorLinks,
) -> std::io::Result<JoinHandle<Result<MgmtPollStats, ConnectError>>> {
    let mut virsh = crate::libvirt::poll::DomstatsPoller::start(&domain.virsh, &domain.name)?;
    links.keep_process(virsh.process());
    std::thread::Builder::new()
        .name("mgmt-poll-libvirt".into())
        .spawn(move || {
            let mut stats = MgmtPollStats {
                rate_hz,
                queries: vec![format!(
                    "virsh domstats {} (virConnectGetAllDomainStats)",
                    domain.name
                )],
                ..Default::default()
            };
            at_rate(rate_hz, &switches, &mut stats, || virsh.round().map(drop));
            Ok(stats)
        })
}

/// One guest's poller: QMP queries at `rate_hz` on its management monitor until stopped.
fn poller(
    socket: PathBuf,
    rate_hz: u32,
    switches: Switches,
    links: MonitorLinks,
) -> std::io::Result<JoinHandle<Result<MgmtPollStats, ConnectError>>> {
    std::thread::Builder::new()
        .name("mgmt-poll".into())
        .spawn(move || {
            // Unpinned: the poller runs where the host schedules it.
            let (mut qmp, _) = monitor::connect(
                ScenarioKind::MgmtPoll,
                &socket,
                &CpuSet::new(),
                Duration::from_secs(5),
            )?;
            links.keep(qmp.get_ref());
            let mut poll = MgmtPoll::new();
            let mut stats = MgmtPollStats {
                rate_hz,
                ..Default::default()
            };
            at_rate(rate_hz, &switches, &mut stats, || {
                poll.round(&mut qmp).map(drop)
            });
            stats.queries = poll.queries();
            stats.queries.extend(
                poll.unsupported()
                    .iter()
                    .map(|u| format!("unsupported: {u}")),
            );
            Ok(stats)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seen in CI: a poller blocked on a call QEMU never answered (the guest powering off)
    /// held the run for the call's 5 s timeout. Stop shuts the monitor down instead.
    #[test]
    fn stop_is_prompt_when_qemu_no_longer_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mgmt.sock");
        let server = super::super::unanswering_monitor(&path);
        let mut p = MgmtPollLoad::new(20, LauncherKind::Qemu);
        p.start(&Targets {
            mgmt_sockets: vec![Some(path)],
            ..Default::default()
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let o = p.stop();
        assert!(
            t.elapsed() < Duration::from_millis(2500),
            "stop took {:?}",
            t.elapsed()
        );
        // Nothing was answered: the poller says so rather than counting rounds.
        let stats = o.mgmt_poll.unwrap();
        assert_eq!(stats.rounds, 0);
        server.join().unwrap();
    }

    /// A QEMU guest gets the poller's monitor; a libvirt guest, polled through libvirt, none
    /// (the monitor would only taint the domain).
    #[test]
    fn only_guests_pinlat_starts_get_a_second_monitor() {
        let cfg = pinlat::config::Config::from_toml_str(
            "[[guests]]\nname = \"g\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n",
        )
        .unwrap();
        let monitor = |launcher| {
            let mut vm = VmSpec::for_guest(
                &cfg.guests[0],
                pinlat::kinds::Accel::Tcg,
                std::path::Path::new("/k"),
                "/i".into(),
                "/c".into(),
                crate::qemu::AgentChannel::File("/a".into()),
            );
            MgmtPollLoad::new(20, launcher).prepare_vm(0, &mut vm);
            vm.mgmt_qmp
        };
        assert!(monitor(LauncherKind::Qemu));
        assert!(!monitor(LauncherKind::Libvirt));
    }

    /// The same for a libvirt guest: a daemon that accepts virsh's connection and never
    /// answers holds its round for good (measured: still blocked after 300 s) unless stop
    /// kills virsh.
    #[test]
    fn stop_is_prompt_when_libvirt_no_longer_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libvirt-sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let _server = std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming().flatten() {
                held.push(s);
            }
        });
        let domain = crate::libvirt::LibvirtDomain {
            virsh: crate::libvirt::Virsh {
                uri: Some(format!("qemu:///system?socket={}", path.display())),
            },
            name: "pinlat-share-rt".into(),
        };
        let mut p = MgmtPollLoad::new(20, LauncherKind::Libvirt);
        let started = p.start(&Targets {
            mgmt_sockets: vec![None],
            libvirt: vec![Some(domain)],
            ..Default::default()
        });
        if let Err(DisturbanceError::Spawn { source, .. }) = &started {
            let msg = format!("virsh cannot run ({source}): install libvirt-clients");
            assert!(std::env::var_os("CI").is_none(), "{msg}");
            eprintln!("skipped: {msg}");
            return;
        }
        started.unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let o = p.stop();
        assert!(
            t.elapsed() < Duration::from_millis(2500),
            "stop took {:?}",
            t.elapsed()
        );
        let stats = o.mgmt_poll.unwrap();
        assert_eq!((stats.rounds, stats.errors), (0, 0), "{stats:?}");
        assert!(o.problem.unwrap().contains("no poll round completed"));
    }
}
