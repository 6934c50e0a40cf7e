//! `host-stress`: CPU and memory load on the host housekeeping pCPUs, as
//! kvmfornfv's host-stress cases did. `stress-ng` when it is installed (pinned with
//! `--taskset`), else a built-in load: one thread per worker per CPU, pinned there, alternating
//! arithmetic with streaming over a 32 MiB buffer.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use pinlat::config::ScenarioKind;
use pinlat::cpuset::CpuSet;
use pinlat::result::Warning;

use super::{Disturbance, DisturbanceError, Outcome, Targets};

/// A running host load; stopped on [`HostStress::stop`] or drop.
#[derive(Debug)]
pub struct HostStress {
    /// What runs, for the run record.
    pub description: String,
    child: Option<Child>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

impl HostStress {
    /// Starts `workers` loads per CPU of `cpus`.
    pub fn start(cpus: &CpuSet, workers: u32) -> std::io::Result<HostStress> {
        let stop = Arc::new(AtomicBool::new(false));
        if let Some(stress_ng) = find_on_path("stress-ng") {
            let n = cpus.len() as u32 * workers;
            let child = Command::new(&stress_ng)
                .arg("--cpu")
                .arg(n.to_string())
                .arg("--vm")
                .arg(cpus.len().to_string())
                .arg("--vm-bytes")
                .arg("64M")
                .arg("--taskset")
                .arg(cpus.to_string())
                .arg("--quiet")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            return Ok(HostStress {
                description: format!(
                    "stress-ng --cpu {n} --vm {} --vm-bytes 64M --taskset {cpus}",
                    cpus.len()
                ),
                child: Some(child),
                stop,
                threads: Vec::new(),
            });
        }
        let mut threads = Vec::new();
        for cpu in cpus.iter() {
            for w in 0..workers {
                let stop = stop.clone();
                let h = std::thread::Builder::new()
                    .name(format!("stress-cpu{cpu}-{w}"))
                    .spawn(move || {
                        let _ = pinlat::sched::set_affinity(0, &[cpu]);
                        let mut buf = vec![0u64; 4 << 20];
                        let mut x = 0x9e37_79b9_7f4a_7c15u64;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..100_000 {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                            }
                            for (i, v) in buf.iter_mut().enumerate().step_by(8) {
                                *v = v.wrapping_add(x ^ i as u64);
                            }
                        }
                        std::hint::black_box(&buf);
                    })?;
                threads.push(h);
            }
        }
        Ok(HostStress {
            description: format!(
                "built-in load (stress-ng not installed): {workers} worker(s) per CPU on {cpus}, arithmetic + 32 MiB streaming"
            ),
            child: None,
            stop,
            threads,
        })
    }

    /// Stops the load and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for HostStress {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `host-stress` disturbance: [`HostStress`] on the housekeeping pCPUs for the run.
#[derive(Debug)]
pub struct HostStressLoad {
    workers: u32,
    running: Option<HostStress>,
    description: Option<String>,
}

impl HostStressLoad {
    /// `workers` loads per housekeeping pCPU.
    pub fn new(workers: u32) -> Self {
        HostStressLoad {
            workers,
            running: None,
            description: None,
        }
    }
}

impl Disturbance for HostStressLoad {
    fn start(&mut self, targets: &Targets) -> Result<(), DisturbanceError> {
        let s = HostStress::start(&targets.housekeeping_cpus, self.workers).map_err(|source| {
            DisturbanceError::Spawn {
                scenario: ScenarioKind::HostStress,
                what: "the host load".into(),
                source,
            }
        })?;
        self.description = Some(s.description.clone());
        self.running = Some(s);
        Ok(())
    }

    fn stop(&mut self) -> Outcome {
        if let Some(mut s) = self.running.take() {
            s.stop();
        }
        Outcome {
            warnings: self
                .description
                .iter()
                .map(|d| Warning::HostStressLoad {
                    description: d.clone(),
                })
                .collect(),
            ..Outcome::default()
        }
    }
}
