//! libvirt checks, made when the launcher is `libvirt` (`pinlat doctor --launcher libvirt`, or
//! `run.launcher = "libvirt"`): the daemon answers, and the two host facts that stop or slow a
//! realtime domain (issue 15, libvirt 9.0 on Debian 12):
//!
//! - RT group scheduling (`cpu.rt_runtime_us` in the cpu controller): libvirt's per-vCPU cpu
//!   cgroup gets `cpu.rt_runtime_us=0`, so the `vcpusched` SCHED_FIFO is refused and the domain
//!   does not start ("Cannot set scheduler parameters … Operation not permitted") unless
//!   `kernel.sched_rt_runtime_us=-1` or `qemu.conf`'s `cgroup_controllers` leaves out `cpu`;
//! - `/dev/kvm` that libvirt's QEMU user cannot open (`root:root 0600`): libvirt re-probes QEMU
//!   on every lookup, ~40 s per `virsh define` measured, unless `qemu.conf` runs QEMU as root
//!   (`user = "+0"`, `group = "+0"`: 0.05 s);
//! - and the QEMU capabilities cache libvirt keeps of its probes.
//!
//! Pure over the files under [`super::SysRoot`] (`/etc/libvirt/qemu.conf`, `/proc/sys`, the
//! cgroup mounts, `/dev/kvm`, `/var/cache/libvirt/qemu/capabilities`) and
//! [`super::ExternalFacts::libvirt`].

use std::os::unix::fs::MetadataExt;

use super::{Check, Env, Found};

/// The host's `qemu.conf`.
const QEMU_CONF: &str = "etc/libvirt/qemu.conf";

pub(super) fn checks(env: &Env) -> Vec<Check> {
    let Some(reach) = &env.external.libvirt else {
        return Vec::new();
    };
    let conf = env.root.read(QEMU_CONF).unwrap_or_default();
    vec![
        reachable(reach),
        rt_cgroup(env, &conf),
        kvm_access(env, &conf),
        caps_cache(env),
    ]
}

/// The value of `key` in a `qemu.conf` (the last uncommented assignment), unquoted.
pub fn conf_value(conf: &str, key: &str) -> Option<String> {
    conf.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
        .next_back()
}

fn reachable(found: &Found) -> Check {
    const ID: &str = "libvirt.reachable";
    match found {
        Found::Yes { what } => Check::pass(ID, what.clone()),
        Found::No { reason } => Check::fail(
            ID,
            reason.clone(),
            "start libvirtd (Debian 12: `apt-get install libvirt-daemon libvirt-daemon-driver-qemu`, \
             then libvirtd -d) or point LIBVIRT_DEFAULT_URI at the daemon",
        ),
    }
}

fn rt_cgroup(env: &Env, conf: &str) -> Check {
    const ID: &str = "libvirt.rt_cgroup";
    let group_sched = [
        "sys/fs/cgroup/cpu/cpu.rt_runtime_us",
        "sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us",
    ]
    .iter()
    .any(|p| env.root.exists(p));
    if !group_sched {
        return Check::pass(ID, "no RT group scheduling in the cpu cgroup controller");
    }
    let runtime = env.root.read_trim("proc/sys/kernel/sched_rt_runtime_us");
    if runtime.as_deref() == Some("-1") {
        return Check::pass(ID, "RT group scheduling, kernel.sched_rt_runtime_us=-1");
    }
    match conf_value(conf, "cgroup_controllers") {
        Some(list) if !list.contains("\"cpu\"") => Check::pass(
            ID,
            format!("RT group scheduling, but qemu.conf cgroup_controllers = {list} leaves out cpu"),
        ),
        _ => Check::fail(
            ID,
            format!(
                "RT group scheduling with kernel.sched_rt_runtime_us={}: libvirt's vCPU cpu cgroup \
                 gets cpu.rt_runtime_us=0 and a domain with vcpusched FIFO does not start \
                 (\"Cannot set scheduler parameters\")",
                runtime.as_deref().unwrap_or("?")
            ),
            "sysctl kernel.sched_rt_runtime_us=-1, or cgroup_controllers without \"cpu\" in \
             /etc/libvirt/qemu.conf (e.g. [ \"cpuset\", \"cpuacct\", \"memory\", \"devices\", \"blkio\" ])",
        ),
    }
}

fn kvm_access(env: &Env, conf: &str) -> Check {
    const ID: &str = "libvirt.kvm_access";
    let Ok(meta) = std::fs::metadata(env.root.path("dev/kvm")) else {
        return Check::skip(ID, "no /dev/kvm (domains run under TCG)");
    };
    let as_root = |key: &str| {
        conf_value(conf, key).is_some_and(|v| matches!(v.trim_matches('"'), "+0" | "root"))
    };
    let open_to_others = meta.mode() & 0o006 == 0o006;
    let group_rw = meta.mode() & 0o060 == 0o060 && meta.gid() != 0;
    let found = format!(
        "/dev/kvm mode {:o} uid {} gid {}",
        meta.mode() & 0o777,
        meta.uid(),
        meta.gid()
    );
    if as_root("user") && as_root("group") {
        Check::pass(ID, format!("{found}; qemu.conf runs QEMU as root"))
    } else if open_to_others || group_rw {
        Check::pass(ID, format!("{found}: open to libvirt's QEMU user"))
    } else {
        Check::warn(
            ID,
            format!(
                "{found}: libvirt's QEMU user cannot open it, so libvirt re-probes QEMU on every \
                 lookup (~40 s per define measured)"
            ),
            "user = \"+0\" and group = \"+0\" in /etc/libvirt/qemu.conf, or give /dev/kvm to \
             group kvm mode 0660 and that group to the QEMU user",
        )
    }
}

fn caps_cache(env: &Env) -> Check {
    const ID: &str = "libvirt.qemu_caps_cache";
    let dir = "var/cache/libvirt/qemu/capabilities";
    let files: Vec<String> = env
        .root
        .list(dir)
        .into_iter()
        .filter(|f| f.ends_with(".xml"))
        .collect();
    if files.is_empty() {
        Check::warn(
            ID,
            format!("no QEMU capabilities cached in /{dir}"),
            "the first domain start probes QEMU (seconds); run `virsh domcapabilities` once",
        )
    } else {
        Check::pass(
            ID,
            format!("{} QEMU binary(ies) cached in /{dir}", files.len()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::{run_checks, Env, Status, SysRoot};
    use super::*;
    use pinlat::cpuset::CpuSet;

    fn env(dir: &std::path::Path, reach: Option<Found>) -> Env {
        Env {
            root: SysRoot::at(dir),
            rt_cpus: CpuSet::new(),
            rt_cpus_source: String::new(),
            external: super::super::ExternalFacts {
                libvirt: reach,
                ..Default::default()
            },
        }
    }

    fn write(dir: &std::path::Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn status(e: &Env, id: &str) -> (Status, String) {
        let r = run_checks(e);
        let c = r
            .checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no {id}"));
        (c.status, format!("{} / {}", c.found, c.fix))
    }

    #[test]
    fn without_the_libvirt_launcher_nothing_is_checked() {
        let d = tempfile::tempdir().unwrap();
        let r = run_checks(&env(d.path(), None));
        assert!(r.checks.iter().all(|c| !c.id.starts_with("libvirt.")));
    }

    #[test]
    fn rt_group_scheduling_fails_until_one_of_the_two_fixes() {
        let d = tempfile::tempdir().unwrap();
        let yes = Some(Found::Yes {
            what: "libvirt 9.0.0".into(),
        });
        write(d.path(), "sys/fs/cgroup/cpu/cpu.rt_runtime_us", "950000\n");
        write(d.path(), "proc/sys/kernel/sched_rt_runtime_us", "950000\n");
        let (s, text) = status(&env(d.path(), yes.clone()), "libvirt.rt_cgroup");
        assert_eq!(s, Status::Fail, "{text}");
        assert!(text.contains("sched_rt_runtime_us=-1") && text.contains("cgroup_controllers"));
        write(
            d.path(),
            QEMU_CONF,
            "# cgroup_controllers = [ \"cpu\" ]\ncgroup_controllers = [ \"cpuset\", \"memory\" ]\n",
        );
        assert_eq!(
            status(&env(d.path(), yes.clone()), "libvirt.rt_cgroup").0,
            Status::Pass
        );
        write(d.path(), QEMU_CONF, "");
        write(d.path(), "proc/sys/kernel/sched_rt_runtime_us", "-1\n");
        assert_eq!(
            status(&env(d.path(), yes), "libvirt.rt_cgroup").0,
            Status::Pass
        );
    }

    #[test]
    fn an_unreachable_daemon_fails_and_a_root_only_kvm_warns_unless_qemu_runs_as_root() {
        let d = tempfile::tempdir().unwrap();
        let no = Some(Found::No {
            reason: "Failed to connect socket".into(),
        });
        assert_eq!(
            status(&env(d.path(), no), "libvirt.reachable").0,
            Status::Fail
        );
        let yes = Some(Found::Yes {
            what: "libvirt 9.0.0".into(),
        });
        write(d.path(), "dev/kvm", "");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            d.path().join("dev/kvm"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let (s, text) = status(&env(d.path(), yes.clone()), "libvirt.kvm_access");
        assert_eq!(s, Status::Warn, "{text}");
        assert!(text.contains("user = \"+0\""), "{text}");
        write(d.path(), QEMU_CONF, "user = \"+0\"\ngroup = \"+0\"\n");
        assert_eq!(
            status(&env(d.path(), yes.clone()), "libvirt.kvm_access").0,
            Status::Pass
        );
        // The capabilities cache.
        assert_eq!(
            status(&env(d.path(), yes.clone()), "libvirt.qemu_caps_cache").0,
            Status::Warn
        );
        write(
            d.path(),
            "var/cache/libvirt/qemu/capabilities/abc.xml",
            "<qemuCaps/>",
        );
        assert_eq!(
            status(&env(d.path(), yes), "libvirt.qemu_caps_cache").0,
            Status::Pass
        );
    }
}
