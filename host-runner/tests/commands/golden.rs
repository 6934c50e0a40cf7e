//! Golden files for the plan exports: `host-runner/tests/golden/<config>.<format>`, for the
//! shipped configs and for the export fixtures in `host-runner/tests/fixtures/exports/`.
//! Regenerate with `PINLAT_BLESS=1 cargo test -p pinlat-runner --test commands` and review the diff.

use super::{pinlat, pinlat_stdout, repo};

/// Checks `pinlat plan <config> --format <format>` against its golden file; `config` is a path
/// from the repository root, and the golden file is named by its stem.
fn check(config: &str, host: &str, format: &str) {
    check_variant(config, host, format, None);
}

/// [`check`] with `--variant <variant>`, whose golden file is `<stem>.<variant>.<format>`.
fn check_variant(config: &str, host: &str, format: &str, variant: Option<&str>) {
    let mut args = vec!["plan", config, "--format", format, "--host-cpus", host];
    if let Some(v) = variant {
        args.extend(["--variant", v]);
    }
    let got = pinlat_stdout(&args);
    let stem = std::path::Path::new(config).file_stem().unwrap();
    let variant = variant.map_or(String::new(), |v| format!(".{v}"));
    let path = repo().join(format!(
        "host-runner/tests/golden/{}{variant}.{format}",
        stem.to_str().unwrap()
    ));
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

/// An export fixture's path.
fn fixture(name: &str) -> String {
    format!("host-runner/tests/fixtures/exports/{name}.toml")
}

#[test]
fn libvirt_lab_8cpu() {
    check("configs/lab-8cpu.toml", "0-7", "libvirt");
}

#[test]
fn nova_lab_8cpu() {
    check("configs/lab-8cpu.toml", "0-7", "nova");
}

#[test]
fn libvirt_lab_16cpu_pinset() {
    check("configs/lab-16cpu-pinset.toml", "0-15", "libvirt");
}

#[test]
fn nova_lab_16cpu_pinset() {
    check("configs/lab-16cpu-pinset.toml", "0-15", "nova");
}

#[test]
fn libvirt_domain_quick() {
    check("configs/quick.toml", "0-1", "libvirt-domain");
}

#[test]
fn nova_emulator_on_rt_pcpu() {
    check("configs/emulator-on-rt-pcpu.toml", "0-1", "nova");
}

#[test]
fn nova_all_realtime_custom() {
    check(&fixture("all-realtime-custom"), "0-7", "nova");
}

#[test]
fn libvirt_all_realtime_custom() {
    check(&fixture("all-realtime-custom"), "0-7", "libvirt");
}

#[test]
fn nova_custom_emulator() {
    check(&fixture("custom-emulator"), "0-7", "nova");
}

#[test]
fn nova_priority_50() {
    check(&fixture("priority-50"), "0-7", "nova");
}

#[test]
fn libvirt_priority_50() {
    check(&fixture("priority-50"), "0-7", "libvirt");
}

#[test]
fn nova_iothreads() {
    check(&fixture("iothreads"), "0-11", "nova");
}

#[test]
fn libvirt_iothreads() {
    check(&fixture("iothreads"), "0-11", "libvirt");
}

#[test]
fn libvirt_domain_with_every_knob() {
    check_variant(&fixture("variants"), "0-7", "libvirt-domain", Some("tuned"));
}

#[test]
fn libvirt_with_every_knob() {
    check_variant(&fixture("variants"), "0-7", "libvirt", Some("tuned"));
}

#[test]
fn libvirt_with_on_fault() {
    check_variant(&fixture("variants"), "0-7", "libvirt", Some("lazy-lock"));
}

#[test]
fn nova_with_every_knob() {
    check_variant(&fixture("variants"), "0-7", "nova", Some("tuned"));
}

#[test]
fn nova_with_on_fault() {
    check_variant(&fixture("variants"), "0-7", "nova", Some("lazy-lock"));
}

#[test]
fn nova_with_an_untuned_variant() {
    check_variant(&fixture("variants"), "0-7", "nova", Some("untuned"));
}

#[test]
fn a_variant_is_named_and_only_for_the_exports() {
    let f = fixture("variants");
    let out = pinlat(&[
        "plan",
        &f,
        "--format",
        "nova",
        "--host-cpus",
        "0-7",
        "--variant",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "--variant: no variant named 'nope' in the config (it has: untuned, tuned, lazy-lock)"
        ),
        "{err}"
    );
    let out = pinlat(&[
        "plan",
        &f,
        "--format",
        "json",
        "--host-cpus",
        "0-7",
        "--variant",
        "tuned",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("use --format libvirt, libvirt-domain or nova"));
    // Without --variant, a config with variants exports the placement alone, as before.
    let plain = pinlat(&["plan", &f, "--format", "nova", "--host-cpus", "0-7"]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("variant"));
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
