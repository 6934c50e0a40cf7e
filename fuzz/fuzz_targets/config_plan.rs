//! Fuzz the config: any text through `Config::from_toml_str`, and any config it accepts through
//! the planner on a fixed 8-CPU host. Both must refuse with a key path or succeed, never panic;
//! an accepted plan must keep every thread on online CPUs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinlat::config::Config;
use pinlat::cpuset::CpuSet;
use pinlat::plan::Plan;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::from_toml_str(text) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.path.is_empty(), "error without a key path: {e}");
            return;
        }
    };
    let online = CpuSet::first_n(8);
    match Plan::new(&config, &online) {
        Ok(plan) => {
            assert_eq!(plan.layouts.len(), config.layouts.len());
            for l in &plan.layouts {
                assert_eq!(l.guests.len(), config.guests.len());
                for g in &l.guests {
                    assert!(g.all_cpus().is_subset(&online), "{} off-line CPUs", l.name);
                }
            }
        }
        Err(e) => assert!(!e.path.is_empty(), "plan error without a key path: {e}"),
    }
});
