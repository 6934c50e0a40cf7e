//! The QEMU knobs' arguments: one golden file, `host-runner/tests/golden/qemu-knobs.args`, with
//! per knob what it adds to (`+`) and removes from (`-`) the argument vector of the same guest
//! without a variant. Regenerate with `PINLAT_BLESS=1` and review the diff.

use std::path::Path;

use pinlat::config::variant::{HugePageSize, MemLock, QemuKnobs, Variant};
use pinlat::kinds::Accel;

use super::*;
use crate::qemu::{qemu_args, AgentChannel, VmSpec};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/qemu-knobs.args");

/// The guest every case starts from: 2 vCPUs, 256 MiB.
fn spec(accel: Accel, knobs: Option<QemuKnobs>) -> VmSpec {
    let cfg = pinlat::config::Config::from_toml_str(
        "[[guests]]\nname = \"g\"\nvcpus = 2\nmemory_mib = 256\n[[layouts]]\nkind = \"vcpu0\"\n",
    )
    .unwrap();
    let variant = knobs.map(|qemu| Variant {
        name: "v".into(),
        qemu,
        ..Variant::default()
    });
    VmSpec::for_guest(
        &cfg.guests[0],
        accel,
        Path::new("/k"),
        "/i".into(),
        "/c".into(),
        AgentChannel::File("/a".into()),
    )
    .with_variant(variant.as_ref())
}

/// The argument vector as options: each `-flag` with its value, if it has one.
fn options(s: &VmSpec) -> Vec<String> {
    let a: Vec<String> = qemu_args(s, Path::new("/q"))
        .into_iter()
        .map(|x| x.to_string_lossy().into_owned())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < a.len() {
        match a.get(i + 1) {
            Some(v) if !v.starts_with('-') => {
                out.push(format!("{} {v}", a[i]));
                i += 2;
            }
            _ => {
                out.push(a[i].clone());
                i += 1;
            }
        }
    }
    out
}

/// `+ option` for each option `with` has beyond `base`, `- option` for each it lost.
fn diff(base: &[String], with: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = base
        .iter()
        .filter(|o| !with.contains(o))
        .map(|o| format!("- {o}"))
        .collect();
    lines.extend(
        with.iter()
            .filter(|o| !base.contains(o))
            .map(|o| format!("+ {o}")),
    );
    lines
}

/// One case per knob (and the combinations that share an option), as `variants[i].qemu` TOML.
fn cases() -> Vec<(&'static str, Accel, QemuKnobs)> {
    let host = QemuKnobs {
        cpu_host: true,
        ..QemuKnobs::default()
    };
    vec![
        (
            "mem_lock = \"on\" (TCG)",
            Accel::Tcg,
            QemuKnobs {
                mem_lock: Some(MemLock::On),
                ..QemuKnobs::default()
            },
        ),
        (
            "mem_lock = \"on-fault\"",
            Accel::Kvm,
            QemuKnobs {
                mem_lock: Some(MemLock::OnFault),
                ..QemuKnobs::default()
            },
        ),
        (
            "mem_lock = \"off\"",
            Accel::Kvm,
            QemuKnobs {
                mem_lock: Some(MemLock::Off),
                ..QemuKnobs::default()
            },
        ),
        (
            "hugepages = \"2M\" (TCG)",
            Accel::Tcg,
            QemuKnobs {
                hugepages: Some(HugePageSize::M2),
                ..QemuKnobs::default()
            },
        ),
        (
            "hugepages = \"1G\"",
            Accel::Kvm,
            QemuKnobs {
                hugepages: Some(HugePageSize::G1),
                ..QemuKnobs::default()
            },
        ),
        ("cpu_host = true", Accel::Kvm, host.clone()),
        (
            "cpu_host = true, invtsc = true",
            Accel::Kvm,
            QemuKnobs {
                invtsc: true,
                ..host.clone()
            },
        ),
        (
            "cpu_host = true, tsc_deadline = true",
            Accel::Kvm,
            QemuKnobs {
                tsc_deadline: true,
                ..host.clone()
            },
        ),
        (
            "cpu_host = true, pmu = false",
            Accel::Kvm,
            QemuKnobs {
                pmu: Some(false),
                ..host.clone()
            },
        ),
        (
            "cpu_host = true, pmu = true",
            Accel::Kvm,
            QemuKnobs {
                pmu: Some(true),
                ..host.clone()
            },
        ),
        (
            "cpu_host = true, kvm_hint_dedicated = true",
            Accel::Kvm,
            QemuKnobs {
                kvm_hint_dedicated: true,
                ..host.clone()
            },
        ),
        (
            "cpu_pm = true",
            Accel::Kvm,
            QemuKnobs {
                cpu_pm: true,
                ..QemuKnobs::default()
            },
        ),
        (
            "every knob: mem_lock = \"on\", hugepages = \"2M\", cpu_host, invtsc, tsc_deadline, pmu = false, kvm_hint_dedicated, cpu_pm",
            Accel::Kvm,
            QemuKnobs {
                mem_lock: Some(MemLock::On),
                hugepages: Some(HugePageSize::M2),
                cpu_host: true,
                invtsc: true,
                tsc_deadline: true,
                pmu: Some(false),
                kvm_hint_dedicated: true,
                cpu_pm: true,
            },
        ),
    ]
}

fn render() -> String {
    let mut out = String::from(
        "# What each variants[i].qemu knob adds (+) to and removes (-) from QEMU's arguments,\n\
         # against the same guest (2 vCPUs, 256 MiB) without a variant.\n",
    );
    for (what, accel, knobs) in cases() {
        let base = options(&spec(accel, None));
        let with = options(&spec(accel, Some(knobs)));
        out.push_str(&format!("\n[{what}] accel {}\n", accel.qemu_arg()));
        for line in diff(&base, &with) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn every_knob_against_its_golden_arguments() {
    let got = render();
    if std::env::var_os("PINLAT_BLESS").is_some() {
        std::fs::write(GOLDEN, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(GOLDEN)
        .unwrap_or_else(|e| panic!("{GOLDEN}: {e} (PINLAT_BLESS=1 creates it)"));
    assert!(got == want, "{GOLDEN} differs from the output:\n{got}");
}

#[test]
fn no_variant_and_an_empty_variant_add_nothing() {
    for accel in [Accel::Kvm, Accel::Tcg] {
        let base = options(&spec(accel, None));
        assert_eq!(options(&spec(accel, Some(QemuKnobs::default()))), base);
    }
}

#[test]
fn mem_lock_and_cpu_pm_share_one_overcommit() {
    let k = QemuKnobs {
        mem_lock: Some(MemLock::OnFault),
        cpu_pm: true,
        ..QemuKnobs::default()
    };
    let a = knob_args(&k, 64);
    assert_eq!(a, ["-overcommit", "mem-lock=on-fault,cpu-pm=on"]);
}

#[test]
fn the_backend_is_the_guest_memory() {
    let k = QemuKnobs {
        hugepages: Some(HugePageSize::G1),
        ..QemuKnobs::default()
    };
    let a = knob_args(&k, 2048);
    assert!(
        a[1].contains(",size=2048M,hugetlb=on,hugetlbsize=1G,prealloc=on"),
        "{a:?}"
    );
    assert_eq!(a[3], "memory-backend=pinlat-mem");
}

#[test]
fn versions_gate_on_fault() {
    let k = QemuKnobs {
        mem_lock: Some(MemLock::OnFault),
        hugepages: Some(HugePageSize::M2),
        ..QemuKnobs::default()
    };
    let u = unsupported(&k, "7.2.22");
    assert_eq!(u.len(), 1);
    assert_eq!(
        (u[0].key, u[0].value.as_str(), u[0].needs),
        ("qemu.mem_lock", "on-fault", "10.0")
    );
    assert!(unsupported(&k, "10.0.0").is_empty());
    assert!(unsupported(&k, "10.1.2").is_empty());
    assert_eq!(unsupported(&k, "4.2.1").len(), 2);
    assert!(unsupported(&k, "not a version").is_empty());
    let on = QemuKnobs {
        mem_lock: Some(MemLock::On),
        ..QemuKnobs::default()
    };
    assert!(unsupported(&on, "7.2.22").is_empty());
    assert_eq!(major_minor("7.2.22"), Some((7, 2)));
    assert_eq!(major_minor("10.0.0-rc1"), Some((10, 0)));
    assert_eq!(major_minor("9"), Some((9, 0)));
}
