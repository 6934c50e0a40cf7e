//! Fuzz the CPU-list parsers: libvirt/nova lists, nova realtime masks and `taskset` hex masks.
//! Any input must give a set or an error, never a panic; a parsed set must print canonically
//! and parse back to itself in both notations; a realtime mask must stay within its vCPUs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinlat::cpuset::{CpuSet, MAX_CPUS};

fn round_trips(s: &CpuSet) {
    if s.is_empty() {
        return;
    }
    let printed = s.to_string();
    assert_eq!(CpuSet::parse(&printed).as_ref(), Ok(s), "list {printed}");
    let hex = s.to_hex();
    assert_eq!(CpuSet::parse_hex(&hex).as_ref(), Ok(s), "hex {hex}");
    assert_eq!(CpuSet::parse_any(&printed).as_ref(), Ok(s));
    assert!(s.iter().all(|c| c < MAX_CPUS));
}

fuzz_target!(|data: &[u8]| {
    let Some((&vcpus, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(s) = CpuSet::parse(text) {
        round_trips(&s);
    }
    if let Ok(s) = CpuSet::parse_any(text) {
        round_trips(&s);
    }
    if let Ok(s) = CpuSet::parse_hex(text) {
        round_trips(&s);
    }
    let vcpus = u32::from(vcpus);
    if let Ok(s) = CpuSet::parse_mask(text, vcpus) {
        assert!(s.iter().all(|c| c < vcpus), "mask {text} for {vcpus} vCPUs gave {s}");
        round_trips(&s);
    }
    // Every error names something the user wrote and renders without panicking.
    if let Err(e) = CpuSet::parse_any(text) {
        assert!(!e.to_string().is_empty());
    }
});
