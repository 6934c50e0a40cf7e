//! KVM, QEMU and guest-kernel checks: the kvm module parameters tuned's
//! `realtime-virtual-host` profile sets (`kvmclock_periodic_sync=0`, `ple_gap=0`) and
//! `nx_huge_pages` (its recovery thread zaps guest huge pages periodically), whether KVM
//! actually boots a guest (a `/dev/kvm` that opens is not a KVM that boots), QEMU's version and
//! whether a guest kernel is found. The last three come from [`super::ExternalFacts`].

use super::{Check, Env, Found, KvmProbe};

pub(super) fn checks(env: &Env) -> Vec<Check> {
    vec![
        periodic_sync(env),
        nx_huge_pages(env),
        ple_gap(env),
        usable(env),
        qemu(env),
        guest_kernel(env),
    ]
}

fn is_on(v: &str) -> bool {
    matches!(v, "Y" | "y" | "1" | "force" | "on")
}

fn periodic_sync(env: &Env) -> Check {
    const ID: &str = "kvm.kvmclock_periodic_sync";
    match env
        .root
        .read_trim("sys/module/kvm/parameters/kvmclock_periodic_sync")
    {
        None => Check::skip(ID, "kvm module not loaded"),
        Some(v) if is_on(&v) => Check::warn(
            ID,
            format!("kvmclock_periodic_sync={v}: KVM updates every guest's kvmclock every 300 s"),
            "options kvm kvmclock_periodic_sync=0 in /etc/modprobe.d (tuned realtime-virtual-host)",
        ),
        Some(v) => Check::pass(ID, format!("kvmclock_periodic_sync={v}")),
    }
}

fn nx_huge_pages(env: &Env) -> Check {
    const ID: &str = "kvm.nx_huge_pages";
    match env
        .root
        .read_trim("sys/module/kvm/parameters/nx_huge_pages")
    {
        None => Check::skip(ID, "kvm module not loaded"),
        Some(v) if is_on(&v) => {
            let ratio = env
                .root
                .read_trim("sys/module/kvm/parameters/nx_huge_pages_recovery_ratio")
                .unwrap_or_else(|| "?".into());
            if ratio == "0" {
                Check::pass(ID, format!("nx_huge_pages={v}, recovery off (ratio 0)"))
            } else {
                Check::warn(
                    ID,
                    format!("nx_huge_pages={v}: the kvm-nx-lpage-recovery thread periodically splits guest huge pages (ratio {ratio})"),
                    "kvm.nx_huge_pages=off if the CPU is not affected by iTLB multihit, else kvm.nx_huge_pages_recovery_ratio=0",
                )
            }
        }
        Some(v) => Check::pass(ID, format!("nx_huge_pages={v}")),
    }
}

fn ple_gap(env: &Env) -> Check {
    const ID: &str = "kvm.ple_gap";
    for module in ["kvm_intel", "kvm_amd"] {
        if let Some(v) = env
            .root
            .read_trim(&format!("sys/module/{module}/parameters/ple_gap"))
            .or_else(|| {
                (module == "kvm_amd")
                    .then(|| {
                        env.root
                            .read_trim("sys/module/kvm_amd/parameters/pause_filter_count")
                    })
                    .flatten()
            })
        {
            return if v == "0" {
                Check::pass(ID, format!("{module} pause-loop exiting off (0)"))
            } else {
                Check::warn(
                    ID,
                    format!("{module} pause-loop exiting on ({v}): a spinning RT vCPU exits to the host"),
                    format!("options {module} ple_gap=0 in /etc/modprobe.d (tuned realtime-virtual-host)"),
                )
            };
        }
    }
    Check::skip(ID, "neither kvm_intel nor kvm_amd exposes ple_gap")
}

fn usable(env: &Env) -> Check {
    const ID: &str = "kvm.usable";
    match &env.external.kvm_probe {
        None => Check::skip(ID, "boot probe not run (--no-kvm-probe)"),
        Some(KvmProbe::Booted) => {
            Check::pass(ID, "a guest booted to the agent's hello under -accel kvm")
        }
        Some(KvmProbe::DoesNotBoot { reason }) => Check::fail(
            ID,
            format!("KVM does not boot a guest: {reason}"),
            "use a host with hardware virtualization (VT-x/AMD-V) enabled; until then runs fall back to TCG, which is not hardware latency",
        ),
        Some(KvmProbe::CannotProbe { reason }) => Check::warn(
            ID,
            format!("KVM was not probed: {reason}"),
            "fix what is missing (see qemu.version and guest.kernel; build the agent with scripts/build-agent.sh), then run pinlat doctor again",
        ),
    }
}

fn qemu(env: &Env) -> Check {
    const ID: &str = "qemu.version";
    match &env.external.qemu {
        None => Check::skip(ID, "not probed"),
        Some(Found::Yes { what }) => Check::pass(ID, what.clone()),
        Some(Found::No { reason }) => Check::fail(
            ID,
            reason.clone(),
            "install qemu-system-x86 or set PINLAT_QEMU to qemu-system-x86_64",
        ),
    }
}

fn guest_kernel(env: &Env) -> Check {
    const ID: &str = "guest.kernel";
    match &env.external.guest_kernel {
        None => Check::skip(ID, "not probed"),
        Some(Found::Yes { what }) => Check::pass(ID, what.clone()),
        Some(Found::No { reason }) => Check::warn(
            ID,
            reason.clone(),
            "set PINLAT_KERNEL to a bzImage, or let `pinlat run` fetch Debian's linux-image-rt-amd64",
        ),
    }
}
