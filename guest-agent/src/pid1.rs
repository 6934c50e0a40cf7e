//! Guest mode: the agent as `/init` (PID 1) of a minimal initramfs.
//!
//! Mount /proc, /sys, /dev; read the run config ([`GUEST_CONFIG_PATH`]); load the kernel modules
//! it lists ([`crate::modules`]); write its sysctls ([`crate::sysctl`]); put `/dev/ttyS1` in raw
//! mode and stream frames on it (hello, intervals, finals, done); print short progress lines on
//! the console (ttyS0); power off. In a shared boot (the config's `phase` set) it measures phase
//! after phase on the runner's commands ([`crate::phases`]) before it powers off. Any error — or a panic, caught here — is reported on the wire
//! as an `error` frame and on the console, then the guest powers off: PID 1 must never exit, or
//! the kernel panics.
//!
//! With `--init` outside PID 1 the same path runs without mounting or powering off, so it can be
//! tested on a host (`--init --config cfg.json --wire frames.bin`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use pinlat::agentcfg::{AgentConfig, GUEST_CONFIG_PATH};
use pinlat::wire::{ErrorReport, FrameWriter, Message};

use crate::cli::Args;
use crate::clock::Clock;
use crate::facts;
use crate::modules::{self, GUEST_MODULES_DIR};
use crate::phases::{Commands, Watchdog};
use crate::run::{hello, measure, panic_message, send, OnCpu, Wire};
use crate::sysctl;

/// Where the last panic happened (set by the hook, read when reporting it).
static PANIC_INFO: Mutex<Option<String>> = Mutex::new(None);

/// Progress lines for a human on the console (ttyS0).
pub(crate) struct Console(pub(crate) Option<File>);

impl Console {
    pub(crate) fn open() -> Self {
        Console(
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open("/dev/console")
                .ok(),
        )
    }

    pub(crate) fn line(&mut self, text: &str) {
        let line = format!("pinlat-agent: {text}\n");
        match &mut self.0 {
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => eprint!("{line}"),
        }
    }
}

/// Run guest mode; as PID 1 this never returns (the guest powers off).
pub fn run(args: &Args) -> ExitCode {
    let pid1 = std::process::id() == 1;
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut slot) = PANIC_INFO.try_lock() {
            *slot = Some(info.to_string());
        }
    }));
    let mut console = Console(None);
    let mut wire: Option<Wire> = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        guest_main(args, pid1, &mut console, &mut wire)
    }));
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(ErrorReport {
            message: format!("{e:#}"),
            cpu: e.downcast_ref::<OnCpu>().map(|c| c.0),
        }),
        Err(p) => Some(ErrorReport {
            message: PANIC_INFO
                .try_lock()
                .ok()
                .and_then(|s| s.clone())
                .unwrap_or_else(|| format!("panic: {}", panic_message(&*p))),
            cpu: None,
        }),
    };
    let code = match &failure {
        None => ExitCode::SUCCESS,
        Some(report) => {
            let sent = catch_unwind(AssertUnwindSafe(|| {
                let w = wire.clone().or_else(|| open_wire(&args.wire).ok());
                send(w.as_ref(), &Message::Error(report.clone()))
            }));
            console.line(&format!("error: {}", report.message));
            if !matches!(sent, Ok(Ok(()))) {
                console.line("could not report the error on the wire");
            }
            ExitCode::from(3)
        }
    };
    if pid1 {
        power_off(&mut console);
    }
    code
}

pub(crate) fn power_off(console: &mut Console) -> ! {
    console.line("powering off");
    nix::unistd::sync();
    let err = reboot(RebootMode::RB_POWER_OFF).unwrap_err();
    console.line(&format!("power-off failed: {err}; halting here"));
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn mount_fs(source: &str, target: &str, fstype: &str) -> Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("mkdir {target}"))?;
    match mount(
        Some(source),
        target,
        Some(fstype),
        MsFlags::empty(),
        None::<&str>,
    ) {
        Ok(()) | Err(nix::errno::Errno::EBUSY) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("Cannot mount {fstype} on {target}")),
    }
}

/// Open the frame port; a tty is put in raw mode (no `onlcr`, no echo).
fn open_wire(path: &Path) -> Result<Wire> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(!path.starts_with("/dev"))
        .truncate(false)
        .custom_flags(libc::O_NOCTTY)
        .open(path)
        .with_context(|| format!("Cannot open wire {}", path.display()))?;
    if let Ok(mut t) = tcgetattr(&f) {
        cfmakeraw(&mut t);
        tcsetattr(&f, SetArg::TCSANOW, &t)
            .with_context(|| format!("Cannot put {} in raw mode", path.display()))?;
    }
    Ok(Arc::new(Mutex::new(FrameWriter::new(Box::new(f)))))
}

fn guest_main(
    args: &Args,
    pid1: bool,
    console: &mut Console,
    wire_slot: &mut Option<Wire>,
) -> Result<()> {
    if pid1 {
        mount_fs("proc", "/proc", "proc")?;
        mount_fs("sysfs", "/sys", "sysfs")?;
        mount_fs("devtmpfs", "/dev", "devtmpfs")?;
        *console = Console::open();
    } else {
        console.0 = None;
    }
    console.line(&format!("starting (agent {})", env!("CARGO_PKG_VERSION")));
    let wire = open_wire(&args.wire)?;
    *wire_slot = Some(wire.clone());
    let cfg_path = args
        .config
        .clone()
        .unwrap_or_else(|| GUEST_CONFIG_PATH.into());
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("Cannot read run config {}", cfg_path.display()))?;
    let cfg = AgentConfig::from_json(&text)
        .with_context(|| format!("Run config {}", cfg_path.display()))?;
    // Drivers first: the facts list the devices they bring. Only the guest's own kernel gets
    // modules; `--init` on a host must not load anything into the host's.
    let loaded = if pid1 {
        modules::load_all(&cfg.modules, Path::new(GUEST_MODULES_DIR))?
    } else {
        if !cfg.modules.is_empty() {
            console.line(&format!("not PID 1: not loading modules {:?}", cfg.modules));
        }
        modules::Loaded::default()
    };
    if let Some(ns) = loaded.total_ns {
        console.line(&format!(
            "loaded {} module(s) in {} us",
            loaded.modules.len(),
            ns / 1_000
        ));
    }
    // The variant's sysctls, before the hello that reports them: one that does not apply
    // fails the run (a guest that is not the one asked for measures nothing). Like modules,
    // only the guest's own kernel gets them.
    let sysctls = if pid1 {
        sysctl::apply(Path::new("/"), &cfg.sysctls)?
    } else {
        if !cfg.sysctls.is_empty() {
            console.line(&format!("not PID 1: not writing sysctls {:?}", cfg.sysctls));
        }
        Vec::new()
    };
    if !sysctls.is_empty() {
        console.line(&format!(
            "{} sysctl(s) written and read back",
            sysctls.len()
        ));
    }
    // The TSC calibration (250 ms) is the boot's: a later phase asking for the same clock
    // reuses it (README "One boot, many measurements": what a shared boot carries over).
    let mut clocks: Vec<(pinlat::agentcfg::ClockChoice, Clock)> = Vec::new();
    let mut clock_for = |choice| match clocks.iter().find(|(c, _)| *c == choice) {
        Some((_, clock)) => *clock,
        None => {
            let clock = Clock::choose(choice);
            clocks.push((choice, clock));
            clock
        }
    };
    let mut facts = facts::collect(clock_for(cfg.clock).info, sysctls);
    facts.devices.modules = loaded.modules;
    facts.devices.modules_load_ns = loaded.total_ns;
    let watchdog = Watchdog::start(args.wire.clone(), wire.clone(), pid1);
    let mut commands: Option<Commands> = None;
    let mut cfg = cfg;
    loop {
        let clock = clock_for(cfg.clock);
        facts.clock = clock.info;
        send(Some(&wire), &hello(&facts, &cfg))?;
        if cfg.wait_for_go {
            let port = commands_port(&mut commands, &args.wire)?;
            if !port.wait_for_go()? {
                console.line("the runner said quit before go");
                return Ok(());
            }
        }
        measure_once(&cfg, clock, &wire, &watchdog, console)?;
        let Some(phase) = cfg.phase else {
            return Ok(());
        };
        match commands_port(&mut commands, &args.wire)?.next_phase()? {
            Some(next) => {
                console.line(&format!(
                    "phase {} done; phase {} next",
                    phase,
                    next.phase.unwrap_or_default()
                ));
                cfg = next;
            }
            None => {
                console.line(&format!("phase {phase} was the last"));
                return Ok(());
            }
        }
    }
}

/// The runner's command port, opened on first use (a boot that never waits reads nothing).
fn commands_port<'a>(commands: &'a mut Option<Commands>, path: &Path) -> Result<&'a mut Commands> {
    match commands {
        Some(c) => Ok(c),
        None => Ok(commands.insert(Commands::open(path)?)),
    }
}

/// One measurement of `cfg`, its frames sent and its lines on the console, under the watchdog.
fn measure_once(
    cfg: &AgentConfig,
    clock: Clock,
    wire: &Wire,
    watchdog: &Watchdog,
    console: &mut Console,
) -> Result<()> {
    watchdog.arm(cfg);
    console.line(&format!(
        "{} on CPUs {:?} for {} ms (+{} ms preheat), clock {:?}",
        cfg.workload,
        cfg.rt_cpus,
        cfg.duration_ms,
        cfg.preheat_ms,
        if cfg.workload == pinlat::kinds::WorkloadKind::Timer {
            pinlat::wire::ClockSource::Monotonic
        } else {
            clock.info.source
        }
    ));
    let measured = measure(cfg, clock, Some(wire), true)?;
    measured.send(Some(wire))?;
    watchdog.disarm();
    for l in &measured.loads {
        console.line(&crate::native::load_line(l));
    }
    console.line(&format!(
        "done: {} result(s) and {} load result(s) sent",
        measured.results.len(),
        measured.loads.len()
    ));
    Ok(())
}
