//! A private `libvirtd` for the libvirt launcher's boot tests, never the system's: its own
//! `libvirtd.conf` and `qemu.conf`, its own socket directory, and its own state, run and log
//! directories, bind-mounted over `/etc/libvirt`, `/run/libvirt`, `/var/lib/libvirt`,
//! `/var/cache/libvirt` and `/var/log/libvirt` in a mount namespace of its own (a privileged
//! libvirtd reads those fixed paths). The host's files are never touched.
//!
//! `qemu.conf` runs QEMU as root with no security driver (the console and agent channel live in
//! pinlat's private runtime directory), logs QEMU's stderr to a file (no virtlogd), and leaves
//! `cpu` out of `cgroup_controllers`: with RT group scheduling libvirt's vCPU cgroup would get
//! `cpu.rt_runtime_us=0` and SCHED_FIFO would be refused. That fixes it without changing the
//! host's `kernel.sched_rt_runtime_us`, so no host setting needs restoring.
//!
//! [`PrivateLibvirtd`]'s `Drop` destroys every domain, stops the daemon, and removes the
//! cgroups libvirt made and the directories; [`PrivateLibvirtd::start`] first removes what a
//! killed test left (its daemon, its QEMUs, its cgroups). Hold [`crate::BootLock`] around it.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where every private daemon's directory is made: `<this>/<pid of the test>`.
pub const LIBVIRTD_ROOT: &str = "/tmp/pinlat-libvirtd";

/// The host directories a privileged libvirtd uses, each replaced by a private one.
const BOUND: [(&str, &str); 5] = [
    ("etc", "/etc/libvirt"),
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("cache", "/var/cache/libvirt"),
    ("log", "/var/log/libvirt"),
];

/// A running private libvirtd.
pub struct PrivateLibvirtd {
    child: Child,
    dir: PathBuf,
    uri: String,
    /// Mount points this guard had to create on the host (removed again if empty).
    made_dirs: Vec<PathBuf>,
    /// `machine` cgroup parents that existed before the daemon started.
    machine_before: Vec<PathBuf>,
}

/// The `machine` cgroup of every mounted controller.
fn machine_groups() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("machine"))
        .collect();
    v.push(PathBuf::from("/sys/fs/cgroup/machine"));
    v.retain(|p| p.is_dir());
    v
}

/// Removes a cgroup directory and its children, deepest first (a cgroup's files go with it).
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// The domain cgroups of pinlat's guests (`machine/qemu-<id>-pinlat-…`).
fn pinlat_domain_groups() -> Vec<PathBuf> {
    machine_groups()
        .iter()
        .flat_map(|m| {
            std::fs::read_dir(m)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
        })
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.starts_with("qemu-") && n.contains("-pinlat-")
                })
        })
        .collect()
}

/// QEMUs of pinlat's domains that libvirt daemonized (parent 1): under [`crate::BootLock`],
/// only a killed test's daemon can have left them.
fn orphan_domain_qemus() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            ppid == Some(1) && String::from_utf8_lossy(&cmd).contains("guest=pinlat-")
        })
        .collect()
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Removes what a killed test left: daemons whose test process is gone, their QEMUs, the
/// domain cgroups and the directories.
pub fn cleanup_leftovers() {
    if let Ok(entries) = std::fs::read_dir(LIBVIRTD_ROOT) {
        for e in entries.filter_map(|e| e.ok()) {
            let owner = e.file_name().to_string_lossy().parse::<i32>().ok();
            if owner.is_some_and(crate::process_alive) {
                continue;
            }
            if let Ok(pid) = std::fs::read_to_string(e.path().join("libvirtd.pid")) {
                if let Ok(pid) = pid.trim().parse::<i32>() {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    if String::from_utf8_lossy(&cmd).contains(LIBVIRTD_ROOT) {
                        kill(pid);
                    }
                }
            }
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    for pid in orphan_domain_qemus() {
        kill(pid);
    }
    std::thread::sleep(Duration::from_millis(200));
    for g in pinlat_domain_groups() {
        remove_cgroup(&g);
    }
}

fn cstring(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in a path")
}

impl PrivateLibvirtd {
    /// Starts the daemon and waits until it answers. Panics with the fix when libvirtd, virsh
    /// or libvirt's QEMU user is missing (`scripts/setup.sh` installs them).
    pub fn start() -> Self {
        cleanup_leftovers();
        for (what, path) in [
            ("libvirtd", "/usr/sbin/libvirtd"),
            ("virsh", "/usr/bin/virsh"),
        ] {
            assert!(
                Path::new(path).exists(),
                "no {what} at {path}: run scripts/setup.sh (libvirt-daemon, \
                 libvirt-daemon-driver-qemu, libvirt-clients)"
            );
        }
        let user = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        assert!(
            user.lines().any(|l| l.starts_with("libvirt-qemu:")),
            "no libvirt-qemu user (libvirtd refuses to start without its default QEMU user): \
             run scripts/setup.sh"
        );
        let dir = PathBuf::from(LIBVIRTD_ROOT).join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        for (sub, _) in BOUND {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::create_dir_all(dir.join("sock")).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("etc/libvirtd.conf"),
            format!(
                "unix_sock_dir = \"{d}/sock\"\nunix_sock_group = \"root\"\n\
                 auth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n\
                 log_outputs = \"3:file:{d}/libvirtd.log\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/qemu.conf"),
            "user = \"+0\"\ngroup = \"+0\"\nsecurity_driver = \"none\"\n\
             stdio_handler = \"file\"\nnamespaces = []\n\
             cgroup_controllers = [ \"cpuset\", \"cpuacct\", \"memory\", \"devices\", \"blkio\" ]\n",
        )
        .unwrap();
        let mut made_dirs = Vec::new();
        for (_, target) in BOUND {
            let t = Path::new(target);
            if !t.exists() {
                std::fs::create_dir_all(t).unwrap();
                made_dirs.push(t.to_path_buf());
            }
        }
        let machine_before = machine_groups();
        // Built before fork: the child only makes syscalls.
        let binds: Vec<(CString, CString)> = BOUND
            .iter()
            .map(|(sub, target)| (cstring(&dir.join(sub)), cstring(Path::new(target))))
            .collect();
        let root = CString::new("/").unwrap();
        let mut cmd = Command::new("/usr/sbin/libvirtd");
        cmd.arg("--config")
            .arg(dir.join("etc/libvirtd.conf"))
            .arg("--pid-file")
            .arg(dir.join("libvirtd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("libvirtd.stderr")).unwrap());
        // SAFETY: runs in the forked child before exec; only async-signal-safe syscalls
        // (unshare, mount) on CStrings built before the fork; nothing allocates or locks.
        unsafe {
            cmd.pre_exec(move || {
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let none = std::ptr::null();
                if libc::mount(
                    none,
                    root.as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                for (src, dst) in &binds {
                    if libc::mount(
                        src.as_ptr(),
                        dst.as_ptr(),
                        none,
                        libc::MS_BIND,
                        std::ptr::null(),
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting libvirtd");
        let uri = format!("qemu:///system?socket={d}/sock/libvirt-sock");
        let mut me = PrivateLibvirtd {
            child,
            dir,
            uri,
            made_dirs,
            machine_before: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if me.virsh(&["version"]).status.success() {
                break;
            }
            if let Ok(Some(s)) = me.child.try_wait() {
                panic!("libvirtd exited ({s}):\n{}", me.log());
            }
            assert!(
                Instant::now() < deadline,
                "libvirtd did not answer within 90 s:\n{}",
                me.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        me.machine_before = machine_before;
        me
    }

    /// The URI of this daemon (for `LIBVIRT_DEFAULT_URI`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Runs `virsh --connect <uri> <args>`.
    pub fn virsh(&self, args: &[&str]) -> Output {
        Command::new("virsh")
            .arg("--connect")
            .arg(&self.uri)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running virsh")
    }

    /// The names of the domains running.
    pub fn domains(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.virsh(&["list", "--name"]).stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The daemon's log and stderr, for failure messages.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        let log = read("libvirtd.log");
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        format!(
            "{}\n{}",
            read("libvirtd.stderr"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// The domain cgroups of pinlat's guests still present.
    pub fn domain_cgroups(&self) -> Vec<PathBuf> {
        pinlat_domain_groups()
    }
}

impl Drop for PrivateLibvirtd {
    fn drop(&mut self) {
        for d in self.domains() {
            let _ = self.virsh(&["destroy", &d]);
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in orphan_domain_qemus() {
            kill(pid);
        }
        std::thread::sleep(Duration::from_millis(100));
        for g in pinlat_domain_groups() {
            remove_cgroup(&g);
        }
        // The `machine` parents libvirt made for this daemon, when empty.
        for m in machine_groups() {
            if !self.machine_before.contains(&m) {
                let _ = std::fs::remove_dir(&m);
            }
        }
        for d in &self.made_dirs {
            let _ = std::fs::remove_dir(d);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // The parent too, once no other daemon's directory is in it.
        let _ = std::fs::remove_dir(LIBVIRTD_ROOT);
    }
}
