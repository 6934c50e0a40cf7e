//! The guest kernel command line per guest knob: a golden file with one line per combination of
//! preset × idle × tsc_reliable × mce_off × timer_migration
//! (`host-runner/tests/golden/guest-cmdline.txt`; `PINLAT_BLESS=1` rewrites it), and the rules
//! the golden file could hide in its bulk, asserted on their own.

use std::path::Path;

use pinlat::config::variant::{CmdlinePreset, GuestIdle, GuestKnobs};
use pinlat::config::{Config, Guest};

use super::Accel;
use super::{guest_append, AgentChannel, VmSpec};

/// A 4-vCPU guest, vCPUs 1-3 realtime, with a `cmdline_extra` of its own.
fn guest() -> Guest {
    Config::from_toml_str(
        "[[guests]]\nname = \"g\"\nvcpus = 4\nrealtime_mask = \"^0\"\ncmdline_extra = \"loglevel=4\"\n\
         [[layouts]]\nkind = \"vcpu0\"\n",
    )
    .unwrap()
    .guests
    .remove(0)
}

fn knobs_name(k: &GuestKnobs) -> String {
    format!(
        "preset={} idle={} tsc_reliable={} mce_off={} timer_migration={}",
        match k.preset {
            CmdlinePreset::Pinlat => "pinlat",
            CmdlinePreset::RealtimeVirtualGuest => "realtime-virtual-guest",
            CmdlinePreset::None => "none",
        },
        match k.idle {
            None => "unset",
            Some(GuestIdle::Poll) => "poll",
            Some(GuestIdle::Haltpoll) => "haltpoll",
        },
        k.tsc_reliable,
        k.mce_off,
        match k.timer_migration {
            None => "unset".to_string(),
            Some(b) => b.to_string(),
        }
    )
}

/// Every combination of the guest knobs, the default first.
fn every_knob() -> Vec<GuestKnobs> {
    let mut out = Vec::new();
    for preset in [
        CmdlinePreset::Pinlat,
        CmdlinePreset::RealtimeVirtualGuest,
        CmdlinePreset::None,
    ] {
        for idle in [None, Some(GuestIdle::Poll), Some(GuestIdle::Haltpoll)] {
            for tsc_reliable in [true, false] {
                for mce_off in [false, true] {
                    for timer_migration in [None, Some(false), Some(true)] {
                        out.push(GuestKnobs {
                            preset,
                            idle,
                            tsc_reliable,
                            mce_off,
                            timer_migration,
                            ..GuestKnobs::default()
                        });
                    }
                }
            }
        }
    }
    out
}

#[test]
fn guest_cmdline_per_knob_golden() {
    let g = guest();
    let got: String = every_knob()
        .iter()
        .map(|k| format!("{}\n  {}\n", knobs_name(k), guest_append(&g, k)))
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/guest-cmdline.txt");
    if std::env::var_os("PINLAT_BLESS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (PINLAT_BLESS=1 creates it)", path.display()));
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        assert_eq!(w, g, "{} line {}", path.display(), i + 1);
    }
    assert_eq!(
        want.lines().count(),
        got.lines().count(),
        "{}",
        path.display()
    );
}

/// Without variants the command line is exactly what guests got before variants existed.
#[test]
fn the_default_knobs_are_todays_line() {
    let spec = VmSpec::for_guest(
        &guest(),
        Accel::Tcg,
        Path::new("/k"),
        "/i".into(),
        "/c".into(),
        AgentChannel::File("/a".into()),
    );
    assert_eq!(
        spec.append,
        "console=ttyS0,115200 panic=-1 quiet isolcpus=1-3 nohz_full=1-3 rcu_nocbs=1-3 \
         irqaffinity=0 tsc=reliable noirqdebug loglevel=4"
    );
    let same = spec
        .clone()
        .with_guest_knobs(&guest(), &GuestKnobs::default());
    assert_eq!(same, spec);
}

#[test]
fn presets_tsc_and_knob_order() {
    let g = guest();
    let rvg = guest_append(
        &g,
        &GuestKnobs {
            preset: CmdlinePreset::RealtimeVirtualGuest,
            timer_migration: Some(true),
            ..GuestKnobs::default()
        },
    );
    for p in [
        "isolcpus=managed_irq,domain,1-3",
        "nohz=on",
        "nohz_full=1-3",
        "rcu_nocbs=1-3",
        "irqaffinity=0",
        "nosoftlockup",
        "sysctl.kernel.sched_rt_runtime_us=-1",
    ] {
        assert!(rvg.split(' ').any(|w| w == p), "{p} in {rvg}");
    }
    // The knob comes after the preset's own timer_migration=0, so the kernel applies it last.
    let preset_at = rvg.find("sysctl.kernel.timer_migration=0").unwrap();
    let knob_at = rvg.find("sysctl.kernel.timer_migration=1").unwrap();
    assert!(knob_at > preset_at, "{rvg}");

    let none = guest_append(
        &g,
        &GuestKnobs {
            preset: CmdlinePreset::None,
            tsc_reliable: false,
            ..GuestKnobs::default()
        },
    );
    assert_eq!(
        none,
        "console=ttyS0,115200 panic=-1 quiet noirqdebug loglevel=4"
    );
}
