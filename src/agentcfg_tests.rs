use super::*;

#[test]
fn minimal_json_gets_documented_defaults() {
    let cfg =
        AgentConfig::from_json(r#"{"workload":"busy-poll","rt_cpus":[1],"duration_ms":5000}"#)
            .unwrap();
    assert_eq!(cfg, AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 5000));
    assert_eq!(cfg.report_interval_ms, 1000);
    assert_eq!(cfg.top_n, 10);
    assert_eq!(cfg.effective_priority(), None);
}

#[test]
fn round_trip_and_unknown_fields() {
    let mut cfg = AgentConfig::new(WorkloadKind::Ring, vec![1, 2], 1000);
    cfg.loads.io = Some(IoLoad::default());
    cfg.loads.net = Some(NetLoad {
        interface: Some("eth0".into()),
        ..NetLoad::default()
    });
    cfg.housekeeping_cpus = vec![0];
    assert_eq!(AgentConfig::from_json(&cfg.to_json()).unwrap(), cfg);
    let err = AgentConfig::from_json(
        r#"{"workload":"timer","rt_cpus":[1],"duration_ms":5,"duraton_ms":6}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("duraton_ms"), "{err}");
}

#[test]
fn modules_are_left_out_when_empty_and_round_trip_when_not() {
    let mut cfg = AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 1000);
    assert!(!cfg.to_json().contains("modules"));
    cfg.modules = vec!["virtio_ring".into(), "virtio".into(), "virtio_pci".into()];
    let back = AgentConfig::from_json(&cfg.to_json()).unwrap();
    assert_eq!(back, cfg);
    assert_eq!(back.modules[2], "virtio_pci");
}

#[test]
fn validation_names_the_field() {
    let mut cfg = AgentConfig::new(WorkloadKind::Timer, vec![1, 1], 1000);
    assert_eq!(
        cfg.validate(),
        Err(AgentConfigError::DuplicateCpu {
            field: "rt_cpus",
            cpu: 1
        })
    );
    cfg.rt_cpus = vec![1];
    assert_eq!(cfg.effective_priority(), Some(DEFAULT_TIMER_PRIORITY));
    cfg.housekeeping_cpus = vec![0, 1];
    assert_eq!(cfg.validate(), Err(AgentConfigError::Overlap(1)));
    cfg.housekeeping_cpus = vec![0];
    cfg.priority = Some(100);
    assert_eq!(cfg.validate(), Err(AgentConfigError::Priority(100)));
    cfg.priority = None;
    cfg.timer_interval_us = 0;
    assert_eq!(
        cfg.validate(),
        Err(AgentConfigError::Zero("timer_interval_us"))
    );
    cfg.timer_interval_us = 1000;
    cfg.modules = vec!["virtio_blk".into(), "../etc/x".into()];
    assert_eq!(
        cfg.validate(),
        Err(AgentConfigError::ModuleName {
            index: 1,
            name: "../etc/x".into()
        })
    );
    let ring = AgentConfig::new(WorkloadKind::Ring, vec![1], 1000);
    assert_eq!(ring.validate(), Err(AgentConfigError::RingCpus));
    assert_eq!("ring".parse::<WorkloadKind>().unwrap(), WorkloadKind::Ring);
    assert!("rings".parse::<WorkloadKind>().is_err());
}

fn loads(json: &str) -> Result<AgentConfig, AgentConfigError> {
    AgentConfig::from_json(&format!(
        r#"{{"workload":"busy-poll","rt_cpus":[1],"duration_ms":5,"loads":{json}}}"#
    ))
}

#[test]
fn an_empty_io_or_net_table_gets_the_documented_defaults() {
    let cfg = loads(r#"{"io":{},"net":{}}"#).unwrap();
    let io = cfg.loads.io.unwrap();
    assert_eq!(
        (
            io.block_bytes,
            io.queue_depth,
            io.read_percent,
            io.fdatasync_every
        ),
        (4096, 1, 50, 1)
    );
    assert_eq!((io.path, io.span_bytes), (None, None));
    let net = cfg.loads.net.unwrap();
    assert_eq!(
        (net.interface, net.rate_pps, net.frame_bytes),
        (None, 1000, 256)
    );
    let off = loads(r#"{"io":null}"#).unwrap();
    assert!(!off.loads.any());
    assert!(loads(r#"{"net":{}}"#).unwrap().loads.any());
}

/// Run files written before `io` became a table carry `"io": false, "io_path": null`.
#[test]
fn the_old_io_switch_still_reads() {
    let old =
        loads(r#"{"syscall":false,"memory":true,"io":false,"memory_mib":null,"io_path":null}"#)
            .unwrap();
    assert_eq!(
        old.loads,
        Loads {
            memory: true,
            ..Loads::default()
        }
    );
    let on = loads(r#"{"io":true,"io_path":"/dev/ttyS2"}"#).unwrap();
    assert_eq!(
        on.loads.io,
        Some(IoLoad {
            path: Some("/dev/ttyS2".into()),
            ..IoLoad::default()
        })
    );
    // Written back, it is today's form.
    let json = on.to_json();
    assert!(!json.contains("io_path"), "{json}");
    assert_eq!(AgentConfig::from_json(&json).unwrap(), on);
    let err = loads(r#"{"io":{},"io_path":"/x"}"#).unwrap_err();
    assert!(err.to_string().contains("loads.io.path"), "{err}");
}

#[test]
fn a_typo_inside_a_load_table_is_named() {
    let err = loads(r#"{"io":{"blok_bytes":4096}}"#).unwrap_err();
    assert!(err.to_string().contains("blok_bytes"), "{err}");
    let err = loads(r#"{"net":{"rate":5}}"#).unwrap_err();
    assert!(err.to_string().contains("rate"), "{err}");
    let err = loads(r#"{"io":7}"#).unwrap_err();
    assert!(err.to_string().contains("loads.io"), "{err}");
}

#[test]
fn load_fields_outside_their_range_name_the_field() {
    let field = |json: &str| match loads(json) {
        Err(AgentConfigError::Load { field, .. }) => field,
        other => panic!("{json}: {other:?}"),
    };
    for (json, want) in [
        (r#"{"io":{"block_bytes":1000}}"#, "loads.io.block_bytes"),
        (r#"{"io":{"block_bytes":256}}"#, "loads.io.block_bytes"),
        (r#"{"io":{"block_bytes":2097152}}"#, "loads.io.block_bytes"),
        (r#"{"io":{"queue_depth":0}}"#, "loads.io.queue_depth"),
        (r#"{"io":{"queue_depth":33}}"#, "loads.io.queue_depth"),
        (r#"{"io":{"read_percent":101}}"#, "loads.io.read_percent"),
        (r#"{"io":{"span_bytes":4095}}"#, "loads.io.span_bytes"),
        (r#"{"io":{"path":""}}"#, "loads.io.path"),
        (r#"{"net":{"rate_pps":0}}"#, "loads.net.rate_pps"),
        (r#"{"net":{"frame_bytes":59}}"#, "loads.net.frame_bytes"),
        (r#"{"net":{"frame_bytes":1515}}"#, "loads.net.frame_bytes"),
        (r#"{"net":{"interface":"../x"}}"#, "loads.net.interface"),
        (
            r#"{"net":{"interface":"abcdefghijklmnop"}}"#,
            "loads.net.interface",
        ),
    ] {
        assert_eq!(field(json), want, "{json}");
    }
    let err = loads(r#"{"io":{"block_bytes":1000}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "loads.io.block_bytes: 1000 is not a multiple of 512 between 512 and 1048576 (O_DIRECT needs whole logical blocks)"
    );
    for ok in [
        r#"{"io":{"block_bytes":512,"queue_depth":32,"read_percent":100,"fdatasync_every":0,"span_bytes":512}}"#,
        r#"{"net":{"interface":"eth0","rate_pps":1,"frame_bytes":60}}"#,
        r#"{"net":{"frame_bytes":1514}}"#,
    ] {
        loads(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn sysctls_are_left_out_when_empty_and_checked_when_not() {
    let mut cfg = AgentConfig::new(WorkloadKind::BusyPoll, vec![1], 1000);
    assert!(!cfg.to_json().contains("sysctls"));
    cfg.sysctls = vec![
        Sysctl {
            key: "kernel.timer_migration".into(),
            value: "0".into(),
        },
        Sysctl {
            key: "kernel.sched_rt_runtime_us".into(),
            value: "-1".into(),
        },
    ];
    assert_eq!(AgentConfig::from_json(&cfg.to_json()).unwrap(), cfg);
    cfg.sysctls[1].key = "../../etc/passwd".into();
    let err = cfg.validate().unwrap_err();
    assert!(
        matches!(err, AgentConfigError::Sysctl { index: 1, .. }),
        "{err}"
    );
    cfg.sysctls[1].key = "kernel.x".into();
    cfg.sysctls[1].value = "1\n2".into();
    assert!(cfg.validate().unwrap_err().to_string().contains("kernel.x"));
}
