//! nova export rules, each against the nova behaviour it encodes (the module doc lists them).

use super::*;

fn export(toml: &str, online: &str) -> String {
    let c = Config::from_toml_str(toml).unwrap();
    let p = Plan::new(&c, &CpuSet::parse(online).unwrap()).unwrap();
    render(&p, &c, None)
}

/// `[[guests]]` tables: (name, vCPUs, iothreads), realtime mask `^0` unless vCPUs is 1 (`0`).
fn guests(list: &[(&str, u32, u32)]) -> String {
    list.iter()
        .map(|(name, vcpus, io)| {
            let mask = if *vcpus == 1 { "0" } else { "^0" };
            format!("[[guests]]\nname = \"{name}\"\nvcpus = {vcpus}\nrealtime_mask = \"{mask}\"\niothreads = {io}\n")
        })
        .collect()
}

/// The block of layout `name` in `out`.
fn block(out: &str, name: &str) -> String {
    let start = out
        .find(&format!("# pinlat layout '{name}'"))
        .unwrap_or_else(|| panic!("no layout {name} in\n{out}"));
    let rest = &out[start..];
    rest[..rest.find("\n\n").map_or(rest.len(), |i| i + 1)].to_string()
}

#[test]
fn masks_are_exclusions_as_nova_parses_them() {
    let rt = CpuSet::parse("1-3").unwrap();
    assert_eq!(nova_mask(4, &rt).as_deref(), Some("^0"));
    let rt = CpuSet::parse("0-3").unwrap();
    assert_eq!(nova_mask(4, &rt), None);
    // Not "2-7": nova before Victoria would read that as no mask and refuse the instance.
    let rt = CpuSet::parse("2-7").unwrap();
    assert_eq!(nova_mask(8, &rt).as_deref(), Some("^0,^1"));
}

const ALL_RT: &str = r#"
[host]
cpus = "0-7"
housekeeping_cpus = "0"
[[guests]]
name = "rt"
vcpus = 2
realtime_mask = "0-1"
iothreads = 1
[[layouts]]
name = "own"
kind = "custom"
[layouts.custom.rt]
vcpus = ["2", "3"]
emulator = "1"
[[layouts]]
name = "colocated"
kind = "custom"
allow_overlap = true
[layouts.custom.rt]
vcpus = ["2", "3"]
emulator = "2-3"
"#;

#[test]
fn an_all_realtime_custom_guest_with_its_emulator_off_its_vcpus_gets_share() {
    let b = block(&export(ALL_RT, "0-7"), "own");
    // nova accepts an all-realtime guest only with an emulator policy (no mask to write).
    assert!(b.contains("hw:cpu_realtime=yes\n"), "{b}");
    assert!(b.contains("hw:emulator_threads_policy=share\n"), "{b}");
    assert!(b.contains("cpu_dedicated_set = 2-3\n"), "{b}");
    // cpu_shared_set is the emulator's pCPU, not the housekeeping set.
    assert!(b.contains("cpu_shared_set = 1\n"), "{b}");
    assert!(!b.contains("guest 'rt'"), "nothing lost for the guest: {b}");
}

#[test]
fn an_all_realtime_guest_with_its_emulator_on_its_vcpus_is_said_plainly() {
    let b = block(&export(ALL_RT, "0-7"), "colocated");
    // nova would refuse hw:cpu_realtime here: it is left out, and the block says why.
    assert!(!b.contains("\nhw:cpu_realtime"), "{b}");
    assert!(!b.contains("\nhw:emulator_threads_policy"), "{b}");
    assert!(b.contains("RealtimeMaskNotFoundOrInvalid"), "{b}");
    assert!(b.contains("SCHED_OTHER"), "{b}");
}

#[test]
fn a_custom_emulator_beside_the_housekeeping_vcpu_is_nova_realtime_rule() {
    let toml = "[host]\nhousekeeping_cpus = \"0-1\"\n".to_string()
        + &guests(&[("g", 3, 1)])
        + r#"
[[layouts]]
name = "beside"
kind = "custom"
[layouts.custom.g]
vcpus = ["2", "3", "4"]
emulator = "2"
"#;
    let b = block(&export(&toml, "0-7"), "beside");
    assert!(b.contains("hw:cpu_realtime_mask=^0\n"), "{b}");
    assert!(!b.contains("\nhw:emulator_threads_policy"), "{b}");
    assert!(!b.contains("guest 'g'"), "reproduced exactly: {b}");
    assert!(b.contains("cpu_shared_set = 0-1\n"), "{b}");
}

#[test]
fn custom_guests_with_emulators_of_their_own_say_that_share_floats_over_the_union() {
    let toml = guests(&[("a", 2, 1), ("b", 2, 1)])
        + r#"
[[layouts]]
name = "two"
kind = "custom"
[layouts.custom.a]
vcpus = ["2", "3"]
emulator = "0"
[layouts.custom.b]
vcpus = ["4", "5"]
emulator = "1"
"#;
    let b = block(&export(&toml, "0-7"), "two");
    assert_eq!(
        b.matches("\nhw:emulator_threads_policy=share\n").count(),
        2,
        "{b}"
    );
    assert!(b.contains("cpu_shared_set = 0-1\n"), "{b}");
    assert!(b.contains("'a' on 0, 'b' on 1"), "{b}");
}

#[test]
fn a_priority_other_than_1_is_the_host_wide_nova_conf_option() {
    let toml = guests(&[("g", 2, 1)])
        + r#"
[[layouts]]
kind = "isolate"
rt_priority = 50
[[layouts]]
kind = "share"
rt_priority = 50
"#;
    let out = export(&toml, "0-3");
    let b = block(&out, "isolate");
    assert!(
        b.contains("[libvirt]\n# host-wide, not per flavor: every realtime instance on this compute host runs its realtime vCPUs at SCHED_FIFO 50\nrealtime_scheduler_priority = 50"),
        "{b}"
    );
    assert!(!out.contains("always uses priority 1"), "{out}");
    // share leaves out hw:cpu_realtime: no priority to set.
    assert!(!block(&out, "share").contains("realtime_scheduler_priority"));
}

#[test]
fn iothread_counts_other_than_one_cite_nova_rule() {
    let toml = guests(&[("none", 2, 0), ("two", 2, 2), ("one", 2, 1), ("zero", 1, 0)])
        + "[[layouts]]\nkind = \"isolate\"\n";
    let b = block(&export(&toml, "0-10"), "isolate");
    assert!(
        b.contains(&format!(
            "guests 'none', 'zero' ask for 0 iothreads: {IOTHREAD_RULE}"
        )),
        "{b}"
    );
    assert!(b.contains("guest 'two' asks for 2 iothreads: "), "{b}");
    assert!(!b.contains("guest 'one'"), "{b}");
    assert!(IOTHREAD_RULE.contains("2025.1"));
}

#[test]
fn custom_iothreads_away_from_the_emulator_are_not_what_nova_does() {
    let toml = guests(&[("g", 2, 1)])
        + r#"
[[layouts]]
name = "io"
kind = "custom"
[layouts.custom.g]
vcpus = ["2", "3"]
emulator = "0"
iothreads = "1"
"#;
    let b = block(&export(&toml, "0-3"), "io");
    assert!(
        b.contains("guest 'g' has its iothreads on 1 and its emulator threads on 0: "),
        "{b}"
    );
}
