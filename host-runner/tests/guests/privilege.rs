//! Who may get in and what happens without privileges: the runtime dir and QMP sockets are
//! private while a guest runs, and without root or CAP_SYS_NICE a run degrades with a recorded
//! warning (`--strict` makes that a failure).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pinlat::result::{HostPolicy, RunStatus, ThreadRole};
use pinlat_test_infra::BootLock;

use super::{load_runs, only_subdir, repo};

fn config(dir: &Path, scenario: &str) -> PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(
        &p,
        format!(
            "[run]\nduration_s = 2\naccel = \"tcg\"\n[host]\ncpus = \"0-1\"\n\
             [[guests]]\nname = \"rt\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n\
             [[scenarios]]\nkind = \"{scenario}\"\n[[workloads]]\nkind = \"busy-poll\"\npreheat_ms = 200\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn boot_runtime_dir_is_0700_and_sockets_0600() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), "mgmt-poll");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pinlat"))
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .current_dir(repo())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Find QEMU's QMP sockets on its command line while it runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    let sockets: Vec<PathBuf> = loop {
        assert!(
            Instant::now() < deadline,
            "no QEMU with two QMP sockets appeared"
        );
        let found: Vec<PathBuf> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .filter(|c| c.contains("pinlat-rt"))
            .flat_map(|c| {
                c.split('\0')
                    .filter_map(|a| a.strip_prefix("unix:"))
                    .map(|a| PathBuf::from(a.split(',').next().unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect();
        if found.len() == 2 && found.iter().all(|s| s.exists()) {
            // Give the runner its moment to chmod after QEMU created them.
            std::thread::sleep(Duration::from_millis(1500));
            break found;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dir = sockets[0].parent().unwrap().to_path_buf();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    for s in &sockets {
        assert_eq!(mode(s), 0o600, "{}", s.display());
        assert_eq!(std::fs::metadata(s).unwrap().uid(), 0);
    }
    assert!(child.wait().unwrap().success());
    assert!(!dir.exists(), "runtime dir {} left behind", dir.display());
}

/// Runs `pinlat run` as user nobody, without capabilities.
fn run_unprivileged(tmp: &Path, strict: bool) -> (Option<i32>, PathBuf, String) {
    // The same search pinlat does (fetching Debian's RT kernel on a fresh machine), as root,
    // then a world-readable copy for the unprivileged runner.
    let kernel = pinlat_runner::kernel::KernelSearch::from_env(None)
        .find()
        .expect("a guest kernel")
        .path;
    let shared = tmp.join("shared");
    std::fs::create_dir_all(shared.join("xdg")).unwrap();
    std::fs::copy(&kernel, shared.join("vmlinuz")).unwrap();
    let (_, agent) = pinlat_runner::agent::find_agent().unwrap();
    std::fs::write(shared.join("pinlat-agent"), agent).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_pinlat"), shared.join("pinlat")).unwrap();
    let cfg = config(&shared, "idle");
    for p in [tmp.to_path_buf(), shared.clone(), shared.join("xdg")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    for f in ["vmlinuz", "pinlat-agent", "pinlat", "c.toml"] {
        std::fs::set_permissions(shared.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = shared.join(if strict { "out-strict" } else { "out" });
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--",
    ])
    .arg(shared.join("pinlat"))
    .arg("run")
    .arg(&cfg)
    .arg("--kernel")
    .arg(shared.join("vmlinuz"))
    .arg("--out")
    .arg(&out)
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap())
    .env("HOME", &shared)
    .env("XDG_RUNTIME_DIR", shared.join("xdg"))
    .env("PINLAT_AGENT", shared.join("pinlat-agent"))
    .current_dir(&shared);
    if strict {
        cmd.arg("--strict");
    }
    let o = cmd.output().unwrap();
    (
        o.status.code(),
        out,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn boot_without_cap_sys_nice_degrades_with_a_warning_and_strict_fails() {
    let _lock = BootLock::acquire().unwrap();
    let tmp = tempfile::tempdir().unwrap();

    let (code, out, stderr) = run_unprivileged(tmp.path(), false);
    assert_eq!(code, Some(0), "{stderr}");
    let runs = load_runs(&only_subdir(&out));
    let r = &runs[0];
    assert!(r.status.is_ok(), "{:?}", r.status);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.to_string().contains("SCHED_FIFO refused")),
        "{:?}",
        r.warnings
    );
    let rt = r.guests[0]
        .observed_start
        .iter()
        .find(|t| t.role == ThreadRole::Vcpu { vcpu: 1 })
        .unwrap();
    assert_eq!(
        rt.policy,
        HostPolicy::Other,
        "the observed policy is recorded, not the planned"
    );
    assert_eq!(
        rt.cpus.to_string(),
        "1",
        "pinning needs no privilege for one's own threads"
    );

    let (code, out, stderr) = run_unprivileged(tmp.path(), true);
    assert_eq!(code, Some(3), "{stderr}");
    let runs = load_runs(&only_subdir(&out));
    match &runs[0].status {
        RunStatus::Failed { stage, reason } => {
            assert_eq!(stage.as_str(), "pin", "{reason}");
            assert!(
                reason.contains("sched_setscheduler") || reason.contains("EPERM"),
                "{reason}"
            );
        }
        RunStatus::Ok => panic!("--strict must fail without SCHED_FIFO"),
    }
}
