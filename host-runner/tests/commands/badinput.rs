//! Invalid CPU lists, realtime masks and hexadecimal masks, each with the exact message the
//! user sees: the offending token and what is wrong with it.

use pinlat::cpuset::CpuSet;

/// (input, expected message) for `CpuSet::parse_any` (host CPU lists and taskset masks).
const LISTS: &[(&str, &str)] = &[
    ("", "empty CPU list: give CPUs like \"0-3,^2,6\""),
    ("   ", "empty CPU list: give CPUs like \"0-3,^2,6\""),
    ("3-1", "\"3-1\": range end before start"),
    ("0,7-2", "\"7-2\": range end before start"),
    ("0-3,^5", "\"^5\": CPU 5 is excluded but was never included"),
    ("^0", "\"^0\": CPU 0 is excluded but was never included"),
    ("1,^1", "\"1,^1\": every CPU is excluded, nothing is left"),
    (
        "0-1,^0,^1",
        "\"0-1,^0,^1\": every CPU is excluded, nothing is left",
    ),
    (
        "8192",
        "\"8192\": CPU 8192 is beyond the limit of 8192 CPUs (0-8191)",
    ),
    (
        "0-9000",
        "\"0-9000\": CPU 9000 is beyond the limit of 8192 CPUs (0-8191)",
    ),
    (
        "x",
        "\"x\": not a CPU number, range (a-b) or exclusion (^n)",
    ),
    (
        "1-2-3",
        "\"1-2-3\": not a CPU number, range (a-b) or exclusion (^n)",
    ),
    (
        "-1",
        "\"-1\": not a CPU number, range (a-b) or exclusion (^n)",
    ),
    (
        "1-",
        "\"1-\": not a CPU number, range (a-b) or exclusion (^n)",
    ),
    (
        "^",
        "\"^\": not a CPU number, range (a-b) or exclusion (^n)",
    ),
    (
        "0;1",
        "\"0;1\": not a CPU number, range (a-b) or exclusion (^n)",
    ),
    (
        "+1",
        "\"+1\": not a CPU number, range (a-b) or exclusion (^n)",
    ),
    ("0,,1", "\"0,,1\": empty entry between commas"),
    ("0,", "\"0,\": empty entry between commas"),
    ("0x", "\"0x\": not a hexadecimal CPU mask like 0x5"),
    ("0x0", "\"0x0\": not a hexadecimal CPU mask like 0x5"),
    ("0xg1", "\"0xg1\": not a hexadecimal CPU mask like 0x5"),
];

/// (mask, vCPUs, expected message) for `CpuSet::parse_mask` (nova's hw:cpu_realtime_mask).
const MASKS: &[(&str, u32, &str)] = &[
    ("^0", 1, "\"^0\": every CPU is excluded, nothing is left"),
    (
        "2-7",
        4,
        "\"2-7\": CPU 7 is beyond the limit of 4 CPUs (0-3)",
    ),
    ("^4", 4, "\"^4\": CPU 4 is beyond the limit of 4 CPUs (0-3)"),
    (
        "1,^2",
        4,
        "\"^2\": CPU 2 is excluded but was never included",
    ),
];

#[test]
fn every_bad_cpu_list_names_its_token() {
    let mut wrong = Vec::new();
    for (input, want) in LISTS {
        match CpuSet::parse_any(input) {
            Ok(set) => wrong.push(format!("{input:?}: accepted as {set}")),
            Err(e) if e.to_string() != *want => {
                wrong.push(format!("{input:?}: got {e:?} = \"{e}\", want \"{want}\""))
            }
            Err(_) => {}
        }
    }
    for (input, vcpus, want) in MASKS {
        match CpuSet::parse_mask(input, *vcpus) {
            Ok(set) => wrong.push(format!("mask {input:?}/{vcpus}: accepted as {set}")),
            Err(e) if e.to_string() != *want => wrong.push(format!(
                "mask {input:?}/{vcpus}: got \"{e}\", want \"{want}\""
            )),
            Err(_) => {}
        }
    }
    assert!(LISTS.len() + MASKS.len() >= 24);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
