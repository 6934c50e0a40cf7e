//! Guest mode: the agent as `/init` (PID 1) of a minimal initramfs.
//!
//! Mount /proc, /sys, /dev; read the run config ([`GUEST_CONFIG_PATH`]); load the kernel modules
//! it lists ([`crate::modules`]); write its sysctls ([`crate::sysctl`]); put `/dev/ttyS1` in raw
//! mode and stream frames on it (hello, intervals, finals, done); print short progress lines on
//! the console (ttyS0); power off. Any error — or a panic, caught here — is reported on the wire
//! as an `error` frame and on the console, then the guest powers off: PID 1 must never exit, or
//! the kernel panics.
//!
//! With `--init` outside PID 1 the same path runs without mounting or powering off, so it can be
//! tested on a host (`--init --config cfg.json --wire frames.bin`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::reboot::{reboot, RebootMode};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use pinlat::agentcfg::{AgentConfig, GUEST_CONFIG_PATH};
use pinlat::wire::{
    Command, Decoded, ErrorReport, FrameDecoder, FrameWriter, Hello, Message, SCHEMA_VERSION,
};

use crate::cli::Args;
use crate::clock::Clock;
use crate::facts;
use crate::modules::{self, GUEST_MODULES_DIR};
use crate::run::{measure, panic_message, send, OnCpu, Wire};
use crate::sysctl;

/// Where the last panic happened (set by the hook, read when reporting it).
static PANIC_INFO: Mutex<Option<String>> = Mutex::new(None);

/// Progress lines for a human on the console (ttyS0).
struct Console(Option<File>);

impl Console {
    fn open() -> Self {
        Console(
            OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open("/dev/console")
                .ok(),
        )
    }

    fn line(&mut self, text: &str) {
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

fn power_off(console: &mut Console) -> ! {
    console.line("powering off");
    nix::unistd::sync();
    let err = reboot(RebootMode::RB_POWER_OFF).unwrap_err();
    console.line(&format!("power-off failed: {err}; halting here"));
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Time allowed on top of preheat + duration before the watchdog gives up on the run.
const WATCHDOG_SLACK: Duration = Duration::from_secs(60);

/// If the run hangs (a thread stuck in the kernel), report it and power off anyway: the host
/// gets an `error` frame instead of a silent timeout.
fn start_watchdog(cfg: &AgentConfig, path: PathBuf, wire: Wire, pid1: bool) {
    let budget =
        Duration::from_millis(cfg.preheat_ms.saturating_add(cfg.duration_ms)) + WATCHDOG_SLACK;
    let spawned = std::thread::Builder::new()
        .name("pinlat-watchdog".into())
        .stack_size(crate::thread::STACK_BYTES)
        .spawn(move || {
            std::thread::sleep(budget);
            let report = Message::Error(ErrorReport {
                message: format!("Run did not finish within {budget:?}: a thread is stuck"),
                cpu: None,
            });
            // The writer may be the stuck one: do not wait for its lock.
            let sent = match wire.try_lock() {
                Ok(mut w) => w.send(&report).is_ok(),
                Err(_) => false,
            };
            if !sent {
                if let Ok(f) = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
                    .open(&path)
                {
                    let _ = FrameWriter::new(f).send(&report);
                }
            }
            let mut console = if pid1 { Console::open() } else { Console(None) };
            console.line(&format!("error: run did not finish within {budget:?}"));
            if pid1 {
                power_off(&mut console);
            }
            std::process::exit(3);
        });
    if let Err(e) = spawned {
        eprintln!("pinlat-agent: warning: no watchdog thread: {e}");
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

/// Blocks until the runner's `go` arrives on the frame port (every guest of a run measures
/// from the same moment). Anything else on the port is ignored; the runner's own deadline ends
/// a run whose go never comes.
fn wait_for_go(path: &Path) -> Result<()> {
    let mut port = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)
        .with_context(|| format!("Cannot open {} for the runner's commands", path.display()))?;
    let mut decoder = FrameDecoder::<Command>::of(4096);
    let mut buf = [0u8; 512];
    loop {
        let n = match port.read(&mut buf) {
            Ok(0) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("Cannot read the runner's commands"),
        };
        if decoder
            .feed(&buf[..n])
            .into_iter()
            .any(|d| matches!(d, Decoded::Message(c) if *c == Command::Go))
        {
            return Ok(());
        }
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
    let clock = Clock::choose(cfg.clock);
    let mut facts = facts::collect(clock.info, sysctls);
    facts.devices.modules = loaded.modules;
    facts.devices.modules_load_ns = loaded.total_ns;
    send(
        Some(&wire),
        &Message::Hello(Hello {
            schema_version: SCHEMA_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").into(),
            facts,
            config: cfg.clone(),
            sent_mono_ns: Some(crate::clock::mono_ns()),
        }),
    )?;
    if cfg.wait_for_go {
        wait_for_go(&args.wire)?;
    }
    start_watchdog(&cfg, args.wire.clone(), wire.clone(), pid1);
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
    let measured = measure(&cfg, clock, Some(&wire), true)?;
    measured.send(Some(&wire))?;
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
