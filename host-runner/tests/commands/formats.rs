//! `pinlat report DIR --format rt-tests|kcidb|prometheus|lava`: prints what `pinlat report DIR`
//! writes, writes nothing itself, exits as the report does, and refuses wrong options with exit
//! 2 and the fix.

use std::path::Path;

use super::pinlat;
use pinlat_test_infra::fixtures::copy_committed as copy;

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Each format printed is the file `pinlat report` writes (LAVA's lines are only printed),
/// printing writes nothing, and the exit code is the report's (1: a budget was exceeded).
#[test]
fn printed_formats_are_the_written_files() {
    let printed = copy("runs-basic");
    let d = printed.path().to_str().unwrap();
    let before = files(printed.path());
    let mut out = Vec::new();
    for args in [
        vec!["--format", "prometheus"],
        vec!["--format", "kcidb"],
        vec!["--format", "rt-tests", "--group", "share.idle.busy-poll"],
        vec!["--format", "lava"],
    ] {
        let mut all = vec!["report", d];
        all.extend(args);
        let o = pinlat(&all);
        assert_eq!(o.status.code(), Some(1), "{all:?}: {}", stderr(&o));
        out.push(String::from_utf8(o.stdout).unwrap());
    }
    assert_eq!(files(printed.path()), before, "--format writes nothing");

    let written = copy("runs-basic");
    let o = pinlat(&["report", written.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let read = |f: &str| std::fs::read_to_string(written.path().join(f)).unwrap();
    assert_eq!(out[0], read("pinlat.prom"));
    assert_eq!(out[1], read("kcidb.json"));
    assert_eq!(out[2], read("share.idle.busy-poll.oslat.json"));
    assert!(
        out[3].contains("\nshare.mgmt-poll.timer fail 149.887 us\n"),
        "{}",
        out[3]
    );
    assert!(!files(written.path()).iter().any(|f| f.contains("lava")));
}

/// The KCIDB ids given on the command line are in the rows, printed and written.
#[test]
fn kcidb_ids_from_the_command_line() {
    let dir = copy("runs-tcg");
    let d = dir.path().to_str().unwrap();
    let ids = ["--kcidb-origin", "my_lab", "--kcidb-build-id", "my_lab:b42"];
    let o = pinlat(&[&["report", d, "--format", "kcidb"][..], &ids].concat());
    assert_eq!(o.status.code(), Some(3), "a run failed: {}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["tests"][0]["origin"], "my_lab");
    assert_eq!(doc["tests"][0]["build_id"], "my_lab:b42");
    pinlat(&[&["report", d][..], &ids].concat());
    let written = std::fs::read_to_string(dir.path().join("kcidb.json")).unwrap();
    assert_eq!(written.as_bytes(), o.stdout);
}

/// Wrong options: exit 2, naming what to do.
#[test]
fn wrong_options_exit_2_with_the_fix() {
    let dir = copy("runs-tcg");
    let d = dir.path().to_str().unwrap();
    for (args, says) in [
        (
            vec!["--format", "rt-tests"],
            "choose one with --group (share.idle.timer, vcpu0.idle.timer)",
        ),
        (
            vec!["--format", "rt-tests", "--group", "share.idle.ring"],
            "use one of share.idle.timer, vcpu0.idle.timer",
        ),
        (
            vec!["--format", "kcidb", "--group", "share.idle.timer"],
            "--group only applies to --format rt-tests",
        ),
        (
            vec!["--group", "share.idle.timer"],
            "the following required arguments were not provided:\n  --format <FORMAT>",
        ),
        (
            vec!["--kcidb-origin", "My Lab"],
            "lowercase letters, digits and '_'",
        ),
        (
            vec!["--kcidb-build-id", "b42"],
            "the origin, ':' and the build's own id",
        ),
        (
            vec!["--format", "junit"],
            "[possible values: rt-tests, kcidb, prometheus, lava]",
        ),
    ] {
        let mut all = vec!["report", d];
        all.extend(args.iter().copied());
        let o = pinlat(&all);
        assert_eq!(o.status.code(), Some(2), "{all:?}");
        assert!(stderr(&o).contains(says), "{all:?}: {}", stderr(&o));
    }
    let help = String::from_utf8(pinlat(&["report", "--help"]).stdout).unwrap();
    for f in [
        "rt-tests",
        "kcidb",
        "prometheus",
        "lava",
        "pinlat.prom",
        "kcidb.json",
        ".oslat.json",
    ] {
        assert!(help.contains(f), "--help lacks {f}:\n{help}");
    }
}
