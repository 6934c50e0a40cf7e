//! Keeping threads QEMU starts after pinning off the RT pCPUs, as libvirt does: the guest's
//! QEMU in a cpuset cgroup of its own, a child group for the emulator (every thread that is
//! not a vCPU or an iothread), one per vCPU and one per iothread, each with the CPUs the plan
//! gives that thread. A thread inherits the group of the thread that creates it, so a worker
//! the main loop starts (QEMU's thread pool starts its workers from the main loop so that they
//! inherit its affinity, `util/thread-pool.c`) is on the emulator set from its first
//! instruction, before any scan could see it.
//!
//! cgroup v1 (`cpuset` hierarchy: `cpuset.cpus`, `cpuset.mems`, a thread moved by writing its
//! id to `tasks`) and cgroup v2 threaded subtrees (`cgroup.type` = `threaded`,
//! `cgroup.threads`) are both supported; this development machine has v1 `cpuset` beside a v2
//! mount without it. Every file is reached through a root directory, so tests run on a fake
//! tree. Where no cpuset hierarchy is usable, the caller scans for new threads instead and
//! says so in the run record.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use pinlat::cpuset::CpuSet;

/// Which cpuset hierarchy there is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// A cgroup v1 hierarchy with the `cpuset` controller, mounted at this directory.
    V1(PathBuf),
    /// The cgroup v2 hierarchy, mounted here, with `cpuset` among its controllers.
    V2(PathBuf),
}

/// No usable cpuset cgroup, or a step of setting one up failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Neither a v1 `cpuset` mount nor a v2 mount offering `cpuset` was found.
    #[error("no cpuset cgroup: neither a cgroup v1 cpuset mount nor a cgroup v2 mount with the cpuset controller")]
    NoHierarchy,
    /// A cgroup file could not be written or a directory made.
    #[error("Cannot {what} {}", .path.display())]
    Io {
        /// What was being done (`create`, `write`).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Finds the cpuset hierarchy from a `/proc/self/mountinfo` text; `root` prefixes the mount
/// points (`/` on the live host).
pub fn find_hierarchy(mountinfo: &str, root: &Path) -> Result<Hierarchy, CgroupError> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        // `<id> <parent> <maj:min> <root> <mount point> <options> ... - <fstype> <source> <super options>`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or("");
        let super_opts = r.nth(1).unwrap_or("");
        let at = root.join(mount_point.trim_start_matches('/'));
        match fstype {
            "cgroup" if super_opts.split(',').any(|o| o == "cpuset") => {
                return Ok(Hierarchy::V1(at));
            }
            "cgroup2" => {
                let controllers =
                    fs::read_to_string(at.join("cgroup.controllers")).unwrap_or_default();
                if controllers.split_whitespace().any(|c| c == "cpuset") {
                    v2 = Some(Hierarchy::V2(at));
                }
            }
            _ => {}
        }
    }
    v2.ok_or(CgroupError::NoHierarchy)
}

/// Finds this host's cpuset hierarchy.
pub fn live_hierarchy() -> Result<Hierarchy, CgroupError> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    find_hierarchy(&text, Path::new("/"))
}

/// One guest's cgroup and its children; removed on drop (once QEMU's threads are gone).
#[derive(Debug)]
pub struct GuestCgroup {
    hierarchy: Hierarchy,
    dir: PathBuf,
    children: Vec<PathBuf>,
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(io_err("write", path))
}

impl GuestCgroup {
    /// Creates `<hierarchy>/<name>` allowed on `cpus` (every CPU any of the guest's threads
    /// is planned on). Under v1 its memory nodes are its parent's.
    pub fn create(hierarchy: &Hierarchy, name: &str, cpus: &CpuSet) -> Result<Self, CgroupError> {
        let base = match hierarchy {
            Hierarchy::V1(p) | Hierarchy::V2(p) => p.clone(),
        };
        let dir = base.join(name);
        fs::create_dir(&dir).map_err(io_err("create", &dir))?;
        let g = GuestCgroup {
            hierarchy: hierarchy.clone(),
            dir,
            children: Vec::new(),
        };
        match hierarchy {
            Hierarchy::V1(root) => {
                let mems = fs::read_to_string(root.join("cpuset.mems")).unwrap_or_default();
                write(&g.dir.join("cpuset.cpus"), &cpus.to_string())?;
                write(&g.dir.join("cpuset.mems"), mems.trim())?;
            }
            Hierarchy::V2(_) => {
                write(&g.dir.join("cgroup.subtree_control"), "+cpuset")?;
                write(&g.dir.join("cpuset.cpus"), &cpus.to_string())?;
            }
        }
        Ok(g)
    }

    /// The guest's group.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Which hierarchy it is in.
    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// Creates the child group `name` allowed on `cpus`; returns its directory.
    pub fn child(&mut self, name: &str, cpus: &CpuSet) -> Result<PathBuf, CgroupError> {
        let dir = self.dir.join(name);
        fs::create_dir(&dir).map_err(io_err("create", &dir))?;
        self.children.push(dir.clone());
        match &self.hierarchy {
            Hierarchy::V1(_) => {
                let mems = fs::read_to_string(self.dir.join("cpuset.mems")).unwrap_or_default();
                write(&dir.join("cpuset.cpus"), &cpus.to_string())?;
                write(&dir.join("cpuset.mems"), mems.trim())?;
            }
            Hierarchy::V2(_) => {
                write(&dir.join("cgroup.type"), "threaded")?;
                write(&dir.join("cpuset.cpus"), &cpus.to_string())?;
            }
        }
        Ok(dir)
    }

    /// Moves the whole process into the guest's group (v2: a threaded subtree's threads must
    /// first belong to its domain).
    pub fn adopt_process(&self, pid: i32) -> Result<(), CgroupError> {
        match &self.hierarchy {
            Hierarchy::V1(_) => Ok(()),
            Hierarchy::V2(_) => write(&self.dir.join("cgroup.procs"), &pid.to_string()),
        }
    }

    /// Moves thread `tid` into the child group at `child`.
    pub fn attach(&self, child: &Path, tid: i32) -> Result<(), CgroupError> {
        let file = match self.hierarchy {
            Hierarchy::V1(_) => "tasks",
            Hierarchy::V2(_) => "cgroup.threads",
        };
        write(&child.join(file), &tid.to_string())
    }
}

/// Removes a cgroup directory, retrying while it is busy (threads still leaving it).
fn remove_group(dir: &Path) {
    for _ in 0..100 {
        match fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            _ => return,
        }
    }
}

impl Drop for GuestCgroup {
    fn drop(&mut self) {
        // QEMU has been killed and reaped by now; its threads may take a moment to leave.
        for c in &self.children {
            remove_group(c);
        }
        remove_group(&self.dir);
    }
}

/// Removes `pinlat-*` guest groups a crashed runner left behind (those with no task left).
pub fn remove_stale(hierarchy: &Hierarchy) -> usize {
    let base = match hierarchy {
        Hierarchy::V1(p) | Hierarchy::V2(p) => p,
    };
    let mut removed = 0;
    for e in fs::read_dir(base).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("pinlat-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = e.path();
        for c in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if c.path().is_dir() {
                let _ = fs::remove_dir(c.path());
            }
        }
        if fs::remove_dir(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 26 0:27 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
35 31 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
37 31 0:33 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
45 31 0:41 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_v1_cpuset_beside_a_v2_mount_without_it() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            find_hierarchy(MOUNTINFO, root.path()).unwrap(),
            Hierarchy::V1(root.path().join("sys/fs/cgroup/cpuset"))
        );
        // A pure v2 host: only when cpuset is one of its controllers.
        let v2 = "50 1 0:40 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        fs::create_dir_all(root.path().join("sys/fs/cgroup")).unwrap();
        fs::write(
            root.path().join("sys/fs/cgroup/cgroup.controllers"),
            "cpu io memory\n",
        )
        .unwrap();
        assert!(matches!(
            find_hierarchy(v2, root.path()),
            Err(CgroupError::NoHierarchy)
        ));
        fs::write(
            root.path().join("sys/fs/cgroup/cgroup.controllers"),
            "cpuset cpu io memory\n",
        )
        .unwrap();
        assert_eq!(
            find_hierarchy(v2, root.path()).unwrap(),
            Hierarchy::V2(root.path().join("sys/fs/cgroup"))
        );
    }

    #[test]
    fn v2_threaded_subtree_is_written_as_the_kernel_wants() {
        // A fake v2 tree: plain files stand for the kernel's.
        let root = tempfile::tempdir().unwrap();
        let h = Hierarchy::V2(root.path().to_path_buf());
        let mut g = GuestCgroup::create(&h, "pinlat-1-g", &CpuSet::parse("0-3").unwrap()).unwrap();
        let vcpu1 = g.child("vcpu1", &CpuSet::parse("2").unwrap()).unwrap();
        g.adopt_process(4242).unwrap();
        g.attach(&vcpu1, 4250).unwrap();
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        assert_eq!(read(&g.dir().join("cgroup.subtree_control")), "+cpuset");
        assert_eq!(read(&g.dir().join("cpuset.cpus")), "0-3");
        assert_eq!(read(&g.dir().join("cgroup.procs")), "4242");
        assert_eq!(read(&vcpu1.join("cgroup.type")), "threaded");
        assert_eq!(read(&vcpu1.join("cpuset.cpus")), "2");
        assert_eq!(read(&vcpu1.join("cgroup.threads")), "4250");
    }

    #[test]
    fn v1_groups_take_their_parents_memory_nodes() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("cpuset.mems"), "0\n").unwrap();
        let h = Hierarchy::V1(root.path().to_path_buf());
        let mut g = GuestCgroup::create(&h, "pinlat-1-g", &CpuSet::parse("0-1").unwrap()).unwrap();
        let emu = g.child("emulator", &CpuSet::parse("0").unwrap()).unwrap();
        g.attach(&emu, 77).unwrap();
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        assert_eq!(read(&g.dir().join("cpuset.mems")), "0");
        assert_eq!(read(&emu.join("cpuset.mems")), "0");
        assert_eq!(read(&emu.join("cpuset.cpus")), "0");
        assert_eq!(read(&emu.join("tasks")), "77");
    }
}
