//! Every file in `configs/invalid/` is refused with exit code 2 and the message its first
//! `# expect:` line gives; `# host-cpus:` sets the target host (default 0-7).

use super::{pinlat, repo};

#[test]
fn every_invalid_config_is_refused_with_its_message() {
    let dir = repo().join("configs/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the invalid-config corpus, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# {k}: ")))
                .map(str::to_string)
        };
        let expect =
            field("expect").unwrap_or_else(|| panic!("{} has no '# expect:' line", f.display()));
        let host = field("host-cpus").unwrap_or_else(|| "0-7".into());
        let out = pinlat(&["check", f.to_str().unwrap(), "--host-cpus", &host]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || !stderr.contains(&expect) || !out.stdout.is_empty() {
            failures.push(format!(
                "{}: exit {:?}\n  expected: {expect}\n  stderr:   {stderr}",
                f.display(),
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_configs_pass_check() {
    for (cfg, host) in [
        ("configs/quick.toml", "0-1"),
        ("configs/lab-8cpu.toml", "0-7"),
        ("configs/lab-16cpu-pinset.toml", "0-15"),
        ("configs/lab-tuning.toml", "0-7"),
        ("configs/emulator-on-rt-pcpu.toml", "0-1"),
    ] {
        let out = pinlat(&["check", cfg, "--host-cpus", host]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{cfg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("layout "));
    }
}

#[test]
fn missing_config_file_is_a_usage_error() {
    let out = pinlat(&["check", "configs/does-not-exist.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read configs/does-not-exist.toml")
    );
}

#[test]
fn bad_host_cpus_flag_is_a_usage_error() {
    let out = pinlat(&["check", "configs/quick.toml", "--host-cpus", "3-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--host-cpus: \"3-1\": range end before start"));
}
