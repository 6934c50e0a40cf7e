//! Golden files for the plan exports: `host-runner/tests/golden/<config>.<format>`.
//! Regenerate with `PINLAT_BLESS=1 cargo test -p pinlat-runner --test commands` and review the diff.

use super::{pinlat, repo};

fn check(config: &str, host: &str, format: &str) {
    let out = pinlat(&[
        "plan",
        &format!("configs/{config}.toml"),
        "--format",
        format,
        "--host-cpus",
        host,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout).unwrap();
    let path = repo().join(format!("host-runner/tests/golden/{config}.{format}"));
    if std::env::var_os("PINLAT_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (PINLAT_BLESS=1 creates it)", path.display()));
    assert!(
        got == want,
        "{} differs from the output:\n{got}",
        path.display()
    );
}

#[test]
fn libvirt_lab_8cpu() {
    check("lab-8cpu", "0-7", "libvirt");
}

#[test]
fn nova_lab_8cpu() {
    check("lab-8cpu", "0-7", "nova");
}

#[test]
fn libvirt_lab_16cpu_pinset() {
    check("lab-16cpu-pinset", "0-15", "libvirt");
}

#[test]
fn nova_lab_16cpu_pinset() {
    check("lab-16cpu-pinset", "0-15", "nova");
}

#[test]
fn json_quick_round_trips() {
    let out = pinlat(&[
        "plan",
        "configs/quick.toml",
        "--format",
        "json",
        "--host-cpus",
        "0-1",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let plan: pinlat::plan::Plan = serde_json::from_slice(&out.stdout).unwrap();
    let vcpu0 = plan.layout("vcpu0").unwrap();
    assert_eq!(vcpu0.guests[0].emulator_cpus.to_string(), "0");
    assert_eq!(vcpu0.guests[0].vcpus[1].cpus.to_string(), "1");
}
