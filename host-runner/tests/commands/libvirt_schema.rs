//! Every libvirt export is a domain libvirt accepts: validated against libvirt's own domain
//! schema with `virt-xml-validate` (Debian's libvirt-clients, with the schemas of libvirt0 and
//! xmllint of libxml2-utils; `scripts/setup.sh` installs them). The CPU elements of every
//! (layout, guest) of every shipped config and export fixture are checked in a minimal domain
//! (type `qemu`, a direct kernel boot), and `--format libvirt-domain` as `pinlat` prints it.
//! Without the tool the tests say so and pass, except under CI, where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use pinlat::config::Config;
use pinlat::cpuset::CpuSet;
use pinlat::export::libvirt::{domain, DirectBoot, DomainType};
use pinlat::plan::Plan;

use super::{pinlat_stdout, repo};

const TOOL: &str = "virt-xml-validate";

/// Whether `virt-xml-validate` can run here; under CI (`CI` set) its absence is a failure.
fn have_validator() -> bool {
    let found = Command::new(TOOL)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let msg = format!(
            "{TOOL} not found: install libvirt-clients and libxml2-utils (scripts/setup.sh does)"
        );
        assert!(std::env::var_os("CI").is_none(), "CI must validate: {msg}");
        eprintln!("skipped: {msg}");
    }
    found
}

/// Validates each (what, XML) as a libvirt domain; returns one line per document refused.
fn validate(docs: &[(String, String)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut refused = Vec::new();
    for (i, (what, xml)) in docs.iter().enumerate() {
        let file = dir.path().join(format!("{i}.xml"));
        std::fs::write(&file, xml).unwrap();
        let out = Command::new(TOOL)
            .arg(&file)
            .arg("domain")
            .output()
            .unwrap_or_else(|e| panic!("running {TOOL}: {e}"));
        if !out.status.success() {
            refused.push(format!(
                "{what}: {}{}\n{xml}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    refused
}

/// The valid configs: `configs/*.toml` and the export fixtures.
fn configs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["configs", "host-runner/tests/fixtures/exports"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// `config` planned for a host whose online CPUs are its `host.cpus` (else 0-15).
fn load(config: &Path) -> (Config, Plan) {
    let c = Config::from_file(config).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    let online = c
        .host
        .cpus
        .clone()
        .unwrap_or_else(|| CpuSet::parse("0-15").unwrap());
    let p = Plan::new(&c, &online).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    (c, p)
}

#[test]
fn every_libvirt_export_is_a_valid_domain() {
    if !have_validator() {
        return;
    }
    let boot = DirectBoot {
        kernel: Path::new("/var/cache/pinlat/vmlinuz"),
        initrd: Some(Path::new("/var/cache/pinlat/initramfs.cpio")),
        cmdline: "console=ttyS0,115200 panic=-1",
    };
    let mut docs = Vec::new();
    let files = configs();
    for f in &files {
        let (c, p) = load(f);
        for l in &p.layouts {
            for (g, gc) in l.guests.iter().zip(&c.guests) {
                let what = format!("{} layout '{}' guest '{}'", f.display(), l.name, gc.name);
                docs.push((what, domain(l, g, gc, DomainType::Qemu, Some(&boot))));
            }
        }
    }
    // Every layout kind, float with and without FIFO, iothreads 0/1/2, an all-RT guest.
    assert!(
        files.len() >= 8 && docs.len() >= 40,
        "expected the shipped configs and the export fixtures: {} files, {} domains",
        files.len(),
        docs.len()
    );
    let refused = validate(&docs);
    assert!(
        refused.is_empty(),
        "{} of {} domains refused:\n{}",
        refused.len(),
        docs.len(),
        refused.join("\n")
    );
}

/// The domains `pinlat plan <config> --format libvirt-domain --host-cpus <host> <extra>`
/// prints, one document per domain (each after its heading comment), named `<what> domain <i>`.
fn printed_domains(what: &str, config: &Path, host: &str, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec![
        "plan",
        config.to_str().unwrap(),
        "--format",
        "libvirt-domain",
        "--host-cpus",
        host,
    ];
    args.extend(extra);
    let text = pinlat_stdout(&args);
    text.split("<!-- pinlat layout ")
        .skip(1)
        .enumerate()
        .map(|(i, d)| {
            let xml = &d[d.find("-->\n").expect("heading comment") + 4..];
            (format!("{what} domain {i}"), xml.to_string())
        })
        .collect()
}

#[test]
fn the_libvirt_domain_format_prints_valid_domains() {
    if !have_validator() {
        return;
    }
    let mut docs = Vec::new();
    for f in configs() {
        let what = f.display().to_string();
        docs.extend(printed_domains(&what, &f, "0-15", &[]));
    }
    assert!(docs.len() >= 40, "{} domains", docs.len());
    let refused = validate(&docs);
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}

#[test]
fn every_libvirt_knob_makes_a_valid_domain() {
    if !have_validator() {
        return;
    }
    let f = repo().join("host-runner/tests/fixtures/exports/variants.toml");
    let mut docs = Vec::new();
    for variant in ["untuned", "tuned", "lazy-lock"] {
        let what = format!("variant {variant}");
        docs.extend(printed_domains(&what, &f, "0-7", &["--variant", variant]));
    }
    // "tuned" sets every knob libvirt has an element for.
    assert!(docs
        .iter()
        .any(|(_, x)| x.contains("<hint-dedicated state='on'/>")
            && x.contains("<locked/>")
            && x.contains("<page size='2048' unit='KiB'/>")
            && x.contains("<pmu state='off'/>")
            && x.contains("name='tsc-deadline'")));
    assert_eq!(docs.len(), 6);
    let refused = validate(&docs);
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}

#[test]
fn the_validator_refuses_a_domain_libvirt_would_refuse() {
    if !have_validator() {
        return;
    }
    // A vcpupin whose cpuset is no CPU list: proves the tests above can fail.
    let bad = "<domain type='qemu'><name>x</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><cputune><vcpupin vcpu='0' cpuset='a'/></cputune><os><type arch='x86_64'>hvm</type></os></domain>";
    let refused = validate(&[("broken".into(), bad.into())]);
    assert_eq!(refused.len(), 1, "{refused:?}");
}
