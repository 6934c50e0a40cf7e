//! Unit tests of the parent module (kept apart so the module itself stays readable).
use super::*;

fn spec() -> VmSpec {
    VmSpec {
        name: "run,1".into(),
        accel: Accel::Tcg,
        vcpus: 2,
        memory_mib: 256,
        kernel: "/k/vmlinuz".into(),
        initrd: "/k/initrd.cpio".into(),
        append: guest_cmdline(&[1], &[0], &[]),
        cpu_model: None,
        knobs: Default::default(),
        iothreads: vec!["io0".into()],
        console_log: "/out/a,b/console.log".into(),
        agent_channel: AgentChannel::File("/out/agent.bin".into()),
        start_paused: false,
        mgmt_qmp: false,
        devices: Vec::new(),
    }
}

fn strs(v: &[OsString]) -> Vec<String> {
    v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
}

fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

#[test]
fn args_for_tcg() {
    let a = strs(&qemu_args(&spec(), Path::new("/run/p/qmp.sock")));
    assert_eq!(after(&a, "-accel"), ["tcg,thread=multi"]);
    assert_eq!(after(&a, "-smp"), ["2"]);
    assert_eq!(after(&a, "-m"), ["256"]);
    assert_eq!(after(&a, "-name"), ["run_1,debug-threads=on"]);
    assert_eq!(after(&a, "-cpu"), Vec::<&str>::new());
    assert_eq!(after(&a, "-object"), ["iothread,id=io0"]);
    assert_eq!(after(&a, "-kernel"), ["/k/vmlinuz"]);
    assert_eq!(after(&a, "-initrd"), ["/k/initrd.cpio"]);
    assert_eq!(
        after(&a, "-chardev"),
        [
            "file,id=console,path=/out/a,,b/console.log",
            "file,id=agent,path=/out/agent.bin",
        ]
    );
    // ttyS0 is the first -serial, ttyS1 the second; no third: a UART's port I/O is handled in
    // the vCPU thread under KVM, so it never loaded the emulator threads a layout places.
    assert_eq!(after(&a, "-serial"), ["chardev:console", "chardev:agent"]);
    assert_eq!(
        after(&a, "-qmp"),
        ["unix:/run/p/qmp.sock,server=on,wait=off"]
    );
    for f in ["-nodefaults", "-no-reboot", "-no-user-config"] {
        assert!(a.iter().any(|x| x == f), "{f}");
    }
    assert_eq!(after(&a, "-display"), ["none"]);
    assert!(!a.iter().any(|x| x == "-S"));
}

#[test]
fn args_paused_with_mgmt_monitor() {
    let mut s = spec();
    s.start_paused = true;
    s.mgmt_qmp = true;
    let a = strs(&qemu_args(&s, Path::new("/run/p/qmp.sock")));
    assert!(a.iter().any(|x| x == "-S"));
    assert_eq!(
        after(&a, "-qmp"),
        [
            "unix:/run/p/mgmt.sock,server=on,wait=off",
            "unix:/run/p/qmp.sock,server=on,wait=off"
        ]
    );
}

#[test]
fn args_for_kvm_default_to_host_cpu() {
    let mut s = spec();
    s.accel = Accel::Kvm;
    let a = strs(&qemu_args(&s, Path::new("/q")));
    assert_eq!(after(&a, "-accel"), ["kvm"]);
    assert_eq!(after(&a, "-cpu"), ["host"]);
    s.cpu_model = Some("max".into());
    assert_eq!(
        after(&strs(&qemu_args(&s, Path::new("/q"))), "-cpu"),
        ["max"]
    );
}

#[test]
fn cmdline_from_rt_mask() {
    assert_eq!(
        guest_cmdline(&[5, 1, 2, 3], &[0], &["pinlat.debug"]),
        "console=ttyS0,115200 panic=-1 quiet isolcpus=1-3,5 nohz_full=1-3,5 \
         rcu_nocbs=1-3,5 irqaffinity=0 pinlat.debug"
    );
    assert_eq!(
        guest_cmdline(&[], &[0, 1], &[]),
        "console=ttyS0,115200 panic=-1 quiet irqaffinity=0-1"
    );
}

#[test]
fn version_parsing() {
    let out = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022 Fabrice Bellard\n";
    let (v, line) = parse_qemu_version(out).unwrap();
    assert_eq!(v, "7.2.22");
    assert!(line.starts_with("QEMU emulator version 7.2.22 (Debian"));
    assert_eq!(parse_qemu_version("garbage"), None);
    assert_eq!(parse_qemu_version(""), None);
}

#[test]
fn find_qemu_rules() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join(QEMU_BINARY);
    fs::write(&bin, "#!/bin/false\n").unwrap();
    let path_var = std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap();
    assert!(
        find_qemu(None, Some(&path_var)).is_err(),
        "not executable yet"
    );
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(find_qemu(None, Some(&path_var)).unwrap(), bin);
    assert_eq!(find_qemu(Some(bin.as_os_str()), None).unwrap(), bin);
    let err = find_qemu(Some(OsStr::new("/nope/qemu")), Some(&path_var)).unwrap_err();
    assert!(err.to_string().contains("/nope/qemu"), "{err}");
    let err = find_qemu(None, Some(OsStr::new("/nonexistent"))).unwrap_err();
    assert!(err.to_string().contains("PINLAT_QEMU"), "{err}");
}

#[test]
fn runtime_dir_is_private_and_removed() {
    let parent = tempfile::tempdir().unwrap();
    let path = {
        let rd = runtime_dir_in(parent.path()).unwrap();
        let mode = fs::metadata(rd.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::write(rd.path().join("x"), "y").unwrap();
        rd.path().to_owned()
    };
    assert!(!path.exists());
}

#[test]
fn spawn_failure_is_reported() {
    let bin = QemuBinary {
        path: "/nonexistent/qemu".into(),
        version: "0.0".into(),
        version_line: String::new(),
    };
    let err = Qemu::spawn(&bin, &spec()).unwrap_err();
    assert!(matches!(err, QemuError::Spawn { .. }), "{err}");
}

/// `/bin/sleep` as a stand-in "QEMU" rejects QEMU's flags and exits at once: waiting for
/// QMP must fail fast with its stderr, not wait out the deadline.
#[test]
fn early_exit_is_reported_and_runtime_dir_removed() {
    let bin = QemuBinary {
        path: "/bin/sleep".into(),
        version: "0.0".into(),
        version_line: String::new(),
    };
    let mut q = Qemu::spawn(&bin, &spec()).unwrap();
    let t = Instant::now();
    let err = q
        .connect_qmp(
            Instant::now() + Duration::from_secs(5),
            Duration::from_secs(1),
        )
        .unwrap_err();
    assert!(matches!(err, QemuError::Exited { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(4));
    assert!(q.stderr_tail(4096).contains("sleep"));
    let rd = q.runtime_dir().to_owned();
    assert!(rd.exists());
    drop(q);
    assert!(!rd.exists());
}
