//! Shared boots driven through a guest that answers the runner's commands as the agent does
//! (hello for each phase, results on `go`, power-off on `quit`), with faults injected into
//! chosen phases: every phase its own complete record, the boot and order recorded, and a
//! failed phase followed by a reboot for the phases it left, never a lost one. The boot tests
//! (`tests/guests/boots.rs`) prove the same with QEMU and the real agent.

use std::collections::VecDeque;
use std::io;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pinlat::agentcfg::AgentConfig;
use pinlat::config::Config;
use pinlat::cpuset::CpuSet;
use pinlat::kinds::BootPer;
use pinlat::plan::Plan;
use pinlat::result::{GuestRun, RunRecord, RunStatus, Stage, Warning};
use pinlat::wire::{Command, Done, ErrorReport, Message};

use super::backend::{GuestBackend, OutputBytes, ResumeError};
use super::boots::plan_boots;
use super::phase::execute_boot;
use super::tests::{final_for, frame, hello, ms, with_context, Soak, CONFIG};
use super::tracer::TraceSettings;
use super::{LaunchRequest, Launched, Launcher};
use crate::pin::Pinner;

/// What goes wrong in a boot: in launch `launch` (from 1), at phase `phase` (from 0).
#[derive(Clone, Copy)]
struct Fault {
    launch: usize,
    phase: u32,
    kind: FaultKind,
}

#[derive(Clone, Copy, PartialEq)]
enum FaultKind {
    /// The agent reports an error and powers off.
    AgentError,
    /// The guest dies while measuring.
    Crash,
}

/// Everything the runner told one guest.
type Told = Arc<Mutex<Vec<Command>>>;

struct PhasedGuest {
    started: Instant,
    out: VecDeque<u8>,
    written: u64,
    config: AgentConfig,
    fault: Option<FaultKind>,
    fault_phase: u32,
    exited: bool,
    told: Told,
}

impl PhasedGuest {
    fn say(&mut self, m: &Message) {
        self.out.extend(frame(m));
    }
}

impl GuestBackend for PhasedGuest {
    fn started(&self) -> Instant {
        self.started
    }

    fn read_channel(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let n = self.out.len().min(max);
        out.extend(self.out.drain(..n));
        self.written += n as u64;
        Ok(n)
    }

    fn output_bytes(&self) -> OutputBytes {
        OutputBytes {
            console: 0,
            channel: self.written,
        }
    }

    fn exited(&mut self) -> Option<String> {
        self.exited.then(|| "exit status: 0".to_string())
    }

    fn wait_exit(&mut self, _: Instant) -> bool {
        self.exited
    }

    fn kill(&mut self) {
        self.exited = true;
    }

    fn console_tail(&self) -> String {
        "nothing".into()
    }

    fn console(&self) -> Vec<u8> {
        Vec::new()
    }

    fn resume(&mut self) -> Result<(), ResumeError> {
        Ok(())
    }

    fn send(&mut self, cmd: &Command) -> io::Result<()> {
        self.told.lock().unwrap().push(cmd.clone());
        if self.exited {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        }
        match cmd {
            Command::Go => {
                let now = self.config.phase.unwrap_or_default();
                match self.fault.filter(|_| now == self.fault_phase) {
                    Some(FaultKind::AgentError) => {
                        self.say(&Message::Error(ErrorReport {
                            message: "CPU 2 is not online (online: 0-1)".into(),
                            cpu: None,
                        }));
                        self.exited = true;
                    }
                    Some(FaultKind::Crash) => self.exited = true,
                    None => {
                        let mut f = final_for(1);
                        if let Message::Final(r) = &mut f {
                            r.workload = self.config.workload;
                        }
                        self.say(&f);
                        self.say(&Message::Done(Done {
                            finals: 1,
                            max_rss_kib: None,
                        }));
                    }
                }
            }
            Command::Phase { config } => {
                self.config = config.clone();
                self.say(&hello(config));
            }
            Command::Quit => self.exited = true,
        }
        Ok(())
    }

    fn mgmt_socket(&self) -> Option<PathBuf> {
        None
    }

    fn pinner(&mut self) -> Option<&mut Pinner> {
        None
    }
}

#[derive(Default)]
struct PhasedLauncher {
    fault: Option<Fault>,
    launches: Mutex<Vec<Told>>,
}

impl Launcher for PhasedLauncher {
    fn launch(
        &self,
        req: LaunchRequest<'_>,
        record: &mut GuestRun,
        _: &mut Vec<Warning>,
    ) -> Result<Launched, RunStatus> {
        let mut launches = self.launches.lock().unwrap();
        let told = Told::default();
        launches.push(told.clone());
        record.console_log = Some(format!("console/{}.log", req.run));
        let fault = self.fault.filter(|f| f.launch == launches.len());
        let mut g = PhasedGuest {
            started: Instant::now(),
            out: VecDeque::new(),
            written: 0,
            config: req.agent.clone(),
            fault: fault.map(|f| f.kind),
            fault_phase: fault.map_or(0, |f| f.phase),
            exited: false,
            told,
        };
        g.say(&hello(&req.agent));
        Ok(Launched {
            backend: Box::new(g),
            agent: req.agent,
        })
    }
}

/// The engine tests' config with two scenarios that launch the same VM, a second workload and
/// two repetitions.
fn config(boot_per: BootPer) -> Config {
    let run = format!("[run]\nrepetitions = 2\nboot_per = \"{boot_per}\"\norder_seed = 3\n");
    Config::from_toml_str(&format!(
        "{}[[scenarios]]\nname = \"quiet\"\nkind = \"idle\"\n\
         [[scenarios]]\nname = \"calm\"\nkind = \"idle\"\n\
         [[workloads]]\nkind = \"timer\"\npreheat_ms = 0\n",
        CONFIG.replace("[run]\n", &run)
    ))
    .unwrap()
}

/// Every record of `config`'s session, in the order they ended, and the commands each launched
/// guest was told.
fn session_of(config: &Config, fault: Option<Fault>) -> (Vec<RunRecord>, Vec<Vec<Command>>) {
    let plan = Plan::new(config, &CpuSet::parse("0-1").unwrap()).unwrap();
    let launcher = PhasedLauncher {
        fault,
        ..Default::default()
    };
    let seed = config.run.order_seed.unwrap();
    let mut records = Vec::new();
    let mut started = Vec::new();
    with_context(
        config,
        &plan,
        &launcher,
        ms(500),
        &TraceSettings::off(),
        &Soak::default(),
        |ctx| {
            for boot in plan_boots(config, &plan, seed) {
                let flow =
                    execute_boot(ctx, &boot, &mut |n| started.push(n.to_string()), &mut |r| {
                        records.push(r);
                        ControlFlow::Continue(())
                    });
                assert!(flow.is_continue());
            }
        },
    );
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(started, names, "every run started is recorded, in order");
    let told = launcher
        .launches
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.lock().unwrap().clone())
        .collect();
    (records, told)
}

/// [`session_of`] the two-scenario config.
fn session(boot_per: BootPer, fault: Option<Fault>) -> (Vec<RunRecord>, Vec<Vec<Command>>) {
    session_of(&config(boot_per), fault)
}

fn kinds(told: &[Command]) -> Vec<&'static str> {
    told.iter()
        .map(|c| match c {
            Command::Go => "go",
            Command::Phase { .. } => "phase",
            Command::Quit => "quit",
        })
        .collect()
}

/// Two boots of four phases: each phase a complete, good record of its own with its own hello
/// (its config's phase index), results and window; the boot, the phase's place and the seed in
/// every record; the agent driven go, phase, go, …, quit.
#[test]
fn every_phase_of_a_shared_boot_is_its_own_complete_record() {
    let (records, told) = session(BootPer::Repetition, None);
    assert_eq!(records.len(), 8);
    assert_eq!(told.len(), 2, "one boot per repetition");
    for t in &told {
        assert_eq!(
            kinds(t),
            ["go", "phase", "go", "phase", "go", "phase", "go", "quit"]
        );
    }
    for (i, r) in records.iter().enumerate() {
        assert!(r.status.is_ok(), "{}: {:?}", r.name, r.status);
        let b = r.boot.as_ref().unwrap();
        assert_eq!(b.boot_per, BootPer::Repetition);
        assert_eq!((b.phase, b.phases), ((i % 4) as u32, 4));
        assert_eq!(b.boot_id, records[i - i % 4].name);
        assert_eq!((b.order_seed, b.reboot_after.as_deref()), (Some(3), None));
        assert!(r.name.ends_with(&format!(".r{}", i / 4 + 1)), "{}", r.name);
        let g = &r.guests[0];
        let hello = g.hello.as_ref().unwrap();
        assert_eq!(hello.config.phase, Some(b.phase));
        assert_eq!(hello.config.workload, r.workload);
        assert_eq!(g.results.len(), 1);
        assert_eq!(g.results[0].workload, r.workload);
        assert_eq!(g.frames.rejected(), 0);
        // The guests are stopped only after the boot's last phase.
        assert_eq!(g.boot_to_exit_ms.is_some(), b.phase == 3, "{}", r.name);
    }
    // Every measurement once.
    let mut names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 8);
}

/// An agent error in the second phase of the first boot fails that phase's record with the
/// agent's message; the two phases that boot had left run in a new boot that says why, and the
/// second repetition is untouched.
#[test]
fn a_failed_phase_reboots_for_the_phases_it_left() {
    let (records, told) = session(
        BootPer::Repetition,
        Some(Fault {
            launch: 1,
            phase: 1,
            kind: FaultKind::AgentError,
        }),
    );
    assert_eq!(records.len(), 8, "no phase dropped");
    assert_eq!(told.len(), 3, "one reboot");
    assert_eq!(kinds(&told[0]), ["go", "phase", "go"]);
    assert_eq!(kinds(&told[1]), ["go", "phase", "go", "quit"]);
    let failed = &records[1];
    match &failed.status {
        RunStatus::Failed { stage, reason } => {
            assert_eq!(*stage, Stage::Agent);
            assert!(reason.contains("CPU 2 is not online"), "{reason}");
        }
        RunStatus::Ok => panic!("the faulty phase passed"),
    }
    for r in records.iter().filter(|r| r.name != failed.name) {
        assert!(r.status.is_ok(), "{}: {:?}", r.name, r.status);
    }
    let boot = |i: usize| records[i].boot.clone().unwrap();
    assert_eq!((boot(1).phase, boot(1).phases), (1, 4));
    for i in [2, 3] {
        let b = boot(i);
        assert_eq!(b.boot_id, records[2].name);
        assert_eq!((b.phase, b.phases), ((i - 2) as u32, 2));
        assert_eq!(b.reboot_after.as_deref(), Some(failed.name.as_str()));
    }
    assert_eq!(boot(4).reboot_after, None);
    assert_eq!(boot(4).boot_id, records[4].name);
}

/// A guest that dies in the middle of a boot fails that phase in `measure`, and the last phase
/// runs in a new boot.
#[test]
fn a_guest_that_dies_mid_boot_costs_one_phase() {
    let (records, told) = session(
        BootPer::Repetition,
        Some(Fault {
            launch: 2,
            phase: 2,
            kind: FaultKind::Crash,
        }),
    );
    assert_eq!(records.len(), 8);
    assert_eq!(told.len(), 3);
    let bad: Vec<usize> = (0..8).filter(|&i| !records[i].status.is_ok()).collect();
    assert_eq!(bad, [6]);
    assert!(matches!(
        records[6].status,
        RunStatus::Failed {
            stage: Stage::Measure,
            ..
        }
    ));
    let last = records[7].boot.clone().unwrap();
    assert_eq!((last.phase, last.phases), (0, 1));
    assert_eq!(last.reboot_after.as_deref(), Some(records[6].name.as_str()));
}

/// A boot per measurement launches a guest for every run, tells it only `go`, and each record
/// is a boot of its own with no seed; its agent config has no phase.
#[test]
fn a_boot_per_measurement_is_a_fresh_guest_each_time() {
    let (records, told) = session(BootPer::Measurement, None);
    assert_eq!((records.len(), told.len()), (8, 8));
    assert!(told.iter().all(|t| kinds(t) == ["go"]));
    for r in &records {
        assert!(r.status.is_ok(), "{}: {:?}", r.name, r.status);
        let b = r.boot.as_ref().unwrap();
        assert_eq!(
            (b.boot_id.as_str(), b.phase, b.phases),
            (r.name.as_str(), 0, 1)
        );
        assert_eq!(b.order_seed, None);
        assert_eq!(r.guests[0].hello.as_ref().unwrap().config.phase, None);
    }
}

/// What the phase's wall time counts: the first phase of a boot from its launch, the next ones
/// from the end of the one before, so the harness's time between phases is in a record.
#[test]
fn phase_walls_cover_the_whole_boot() {
    let t = Instant::now();
    let (records, _) = session(BootPer::Repetition, None);
    let total: u64 = records.iter().map(|r| r.wall_ms).sum();
    let elapsed = t.elapsed().as_millis() as u64;
    assert!(total <= elapsed + 1, "{total} > {elapsed}");
    assert!(
        Duration::from_millis(total) >= Duration::from_millis(elapsed) / 2,
        "walls {total} ms of {elapsed} ms"
    );
}

/// A disturbance that cannot start (here `mgmt-poll` without a management monitor) fails its
/// phase in `scenario`; the next phase gets a boot of its own, which names the failed run.
#[test]
fn a_disturbance_that_cannot_start_costs_its_phase_and_a_reboot() {
    let config =
        Config::from_toml_str(&format!(
        "{}[[scenarios]]\nkind = \"mgmt-poll\"\n[[workloads]]\nkind = \"timer\"\npreheat_ms = 0\n",
        CONFIG.replace("[run]\n", "[run]\nboot_per = \"repetition\"\norder_seed = 1\n")
    ))
        .unwrap();
    let (records, told) = session_of(&config, None);
    assert_eq!(records.len(), 2);
    assert_eq!(told.len(), 2);
    for r in &records {
        assert!(
            matches!(&r.status, RunStatus::Failed { stage: Stage::Scenario, reason } if reason.contains("no management QMP monitor")),
            "{:?}",
            r.status
        );
    }
    let second = records[1].boot.clone().unwrap();
    assert_eq!(
        second.reboot_after.as_deref(),
        Some(records[0].name.as_str())
    );
    assert_eq!((second.phase, second.phases), (0, 1));
}

/// A variant's sysctls are in every phase's config, not only the boot's first: the agent
/// writes them once, and each later phase's config (and the hello that echoes it) says what the
/// boot runs under.
#[test]
fn every_phase_of_a_variant_carries_its_sysctls() {
    let mut c = config(BootPer::Repetition);
    let v = Config::from_toml_str(
        "[[guests]]\nname = \"g\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n\
         [[variants]]\nname = \"tm\"\nguest.sysctls = { \"kernel.timer_migration\" = 0 }\n",
    )
    .unwrap();
    c.variants = v.variants;
    let (records, told) = session_of(&c, None);
    assert_eq!(records.len(), 8);
    let phases: Vec<&AgentConfig> = told
        .iter()
        .flatten()
        .filter_map(|cmd| match cmd {
            Command::Phase { config } => Some(config),
            _ => None,
        })
        .collect();
    assert_eq!(phases.len(), 6, "three later phases per boot");
    for config in phases {
        assert_eq!(
            config
                .sysctls
                .iter()
                .map(|s| (s.key.as_str(), s.value.as_str()))
                .collect::<Vec<_>>(),
            [("kernel.timer_migration", "0")]
        );
    }
}
