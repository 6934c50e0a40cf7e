//! One native run of the agent for calibration: spawned with an argument vector, its hello
//! watched for (the moment its measuring threads start), its JSON result read back.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pinlat::wire::RunResult;

use super::CalibrateError;
use pinlat::host::monotonic_ns;

/// One native agent run.
#[derive(Debug, Clone)]
pub struct AgentRun<'a> {
    /// Agent binary.
    pub agent: &'a Path,
    /// Where its files go.
    pub dir: &'a Path,
    /// Measured CPU.
    pub cpu: u32,
    /// `--workload`.
    pub workload: &'a str,
    /// Measured time, ms.
    pub run_ms: u64,
    /// Preheat, ms.
    pub preheat_ms: u64,
    /// SCHED_FIFO priority; `None` = SCHED_OTHER.
    pub priority: Option<u8>,
    /// More arguments.
    pub extra: Vec<String>,
}

impl<'a> AgentRun<'a> {
    /// Spawns the agent; `on_hello(t)` is called with the `CLOCK_MONOTONIC` time (ns) the
    /// agent's hello frame appeared (right before its threads start and preheat), and returns
    /// the injector to join before waiting for the agent. Returns the result and the
    /// (spawn, exit) times, ns.
    pub fn run<T>(
        &self,
        tag: &str,
        on_hello: impl FnOnce(u64) -> T,
    ) -> Result<(RunResult, T, (u64, u64)), CalibrateError> {
        let out = self.dir.join(format!("{tag}.json"));
        let frames = self.dir.join(format!("{tag}.frames"));
        let err = self.dir.join(format!("{tag}.stderr"));
        let errf = std::fs::File::create(&err).map_err(|source| CalibrateError::Io {
            what: format!("creating {}", err.display()),
            source,
        })?;
        let mut args: Vec<String> = vec![
            "--native".into(),
            "--workload".into(),
            self.workload.into(),
            "--cpus".into(),
            self.cpu.to_string(),
            "--duration".into(),
            format!("{}ms", self.run_ms),
            "--preheat".into(),
            format!("{}ms", self.preheat_ms),
            "--frames".into(),
            frames.display().to_string(),
            "--output".into(),
            out.display().to_string(),
            "--quiet".into(),
        ];
        if let Some(p) = self.priority {
            args.push("--priority".into());
            args.push(p.to_string());
        }
        args.extend(self.extra.iter().cloned());
        let spawned = monotonic_ns();
        let mut child = Command::new(self.agent)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(errf)
            .spawn()
            .map_err(|source| CalibrateError::Spawn {
                what: self.agent.display().to_string(),
                source,
            })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let hello = loop {
            if std::fs::metadata(&frames).is_ok_and(|m| m.len() > 0) {
                break monotonic_ns();
            }
            if let Ok(Some(_)) = child.try_wait() {
                break monotonic_ns();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CalibrateError::Timeout {
                    what: "say hello",
                    secs: 10,
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        let extra = on_hello(hello);
        let deadline = Instant::now()
            + Duration::from_millis(self.preheat_ms + self.run_ms)
            + Duration::from_secs(10);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(CalibrateError::Timeout {
                        what: "finish",
                        secs: 10,
                    });
                }
            }
        };
        let exited = monotonic_ns();
        if !status.success() {
            let text = std::fs::read_to_string(&err).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            return Err(CalibrateError::AgentFailed {
                status: status.to_string(),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
            });
        }
        let result = std::fs::read(&out)
            .map_err(|e| CalibrateError::Result {
                path: out.clone(),
                source: Box::new(e),
            })
            .and_then(|b| {
                serde_json::from_slice::<RunResult>(&b).map_err(|e| CalibrateError::Result {
                    path: out.clone(),
                    source: Box::new(e),
                })
            })?;
        Ok((result, extra, (spawned, exited)))
    }
}
