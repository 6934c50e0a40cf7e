use super::*;

#[test]
fn frames_round_trip_and_foreign_ones_are_refused() {
    let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    let mut f = vec![0xffu8; 60];
    build_frame(&mut f, mac, 7, 42, 123_456_789);
    assert_eq!(&f[0..6], &mac);
    assert_eq!(&f[6..12], &mac);
    assert_eq!(&f[12..14], &[0x88, 0xb5]);
    assert!(f[38..].iter().all(|&b| b == 0), "padding is zeroed");
    assert_eq!(parse_frame(&f, 7), Some((42, 123_456_789)));
    assert_eq!(parse_frame(&f, 8), None, "another run's nonce");
    assert_eq!(parse_frame(&f[..37], 7), None, "too short");
    let mut ipv6 = f.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(parse_frame(&ipv6, 7), None);
    let mut other = f.clone();
    other[14] = b'X';
    assert_eq!(parse_frame(&other, 7), None);
}

#[test]
fn macs_as_sysfs_prints_them() {
    assert_eq!(
        parse_mac("52:54:00:12:34:56\n"),
        Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
    );
    for bad in [
        "",
        "52:54:00:12:34",
        "52:54:00:12:34:56:78",
        "5:54:00:12:34:56",
        "zz:54:00:12:34:56",
    ] {
        assert_eq!(parse_mac(bad), None, "{bad}");
    }
}

#[test]
fn the_pacer_keeps_the_rate_and_never_bursts() {
    // 1000 pps: a slot every ms.
    let mut p = Pacer::new(1_000, 1_000);
    assert_eq!(p.next(0), (1_000, 0));
    assert_eq!(p.next(500_000), (1_001_000, 0));
    // Late by less than a period: the slot is kept (sent at once).
    assert_eq!(p.next(2_500_000), (2_001_000, 0));
    // Late by 3.5 periods: three slots skipped, the next one is the current one.
    assert_eq!(p.next(6_501_000), (6_001_000, 3));
    assert_eq!(p.next(6_501_000), (7_001_000, 0));
    // Slots over a long stretch: exactly the rate.
    let mut p = Pacer::new(0, 250);
    let slots: Vec<u64> = (0..250).map(|_| p.next(0).0).collect();
    assert_eq!(slots[249], 249 * 4_000_000);
    assert!(slots.windows(2).all(|w| w[1] - w[0] == 4_000_000));
}

#[test]
fn echoes_are_matched_and_lost_frames_expire_after_a_second() {
    let s = NET_LOST_AFTER_NS;
    let mut f = InFlight::default();
    assert_eq!(f.sent(100, true), 0);
    assert_eq!(f.sent(200, true), 1);
    assert_eq!(f.sent(300, false), 2);
    assert_eq!(
        f.echo(1, 200, 1_200),
        Echo::Received {
            rtt_ns: 1_000,
            counted: true
        }
    );
    assert_eq!(f.echo(1, 200, 1_300), Echo::Unmatched, "a duplicate");
    assert_eq!(
        f.echo(0, 999, 1_300),
        Echo::Unmatched,
        "a send time never used"
    );
    assert_eq!(f.echo(9, 100, 1_300), Echo::Unmatched, "never sent");
    assert_eq!(
        f.echo(2, 300, 400),
        Echo::Received {
            rtt_ns: 100,
            counted: false
        }
    );
    assert!(f.outstanding());
    // Frame 0 is not back a second later: lost; 1 and 2 came back.
    assert_eq!(f.expire(100 + s), 1);
    assert_eq!(f.echo(0, 100, 100 + s + 5), Echo::Late);
    assert_eq!(f.expire(300 + s), 0);
    assert!(!f.outstanding());
    assert_eq!(f.next_seq(), 3);
    // An echo a second late that nobody expired yet is late too.
    assert_eq!(f.sent(10 * s, true), 3);
    assert_eq!(f.echo(3, 10 * s, 11 * s), Echo::Late);
    assert_eq!(f.expire(u64::MAX), 1);
}

#[test]
fn a_frame_that_did_not_go_out_is_never_lost_nor_reused() {
    let mut f = InFlight::default();
    f.sent(1, true);
    f.unsend();
    assert!(!f.outstanding());
    assert_eq!(f.sent(2, true), 1, "sequence numbers move on");
    f.sent(3, true);
    f.unsend();
    assert_eq!(f.expire(u64::MAX), 1);
}

#[test]
fn the_virtio_net_interface_is_found_by_its_driver() {
    use std::os::unix::fs::symlink;
    let root = tempfile::tempdir().unwrap();
    let class = root.path().join("class/net");
    let drivers = root.path().join("bus/drivers");
    for (name, driver) in [
        ("lo", None),
        ("eth1", Some("virtio_net")),
        ("eth0", Some("e1000")),
        ("eth2", Some("virtio_net")),
    ] {
        let dev = root.path().join("devices").join(name);
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(&class).unwrap();
        if let Some(d) = driver {
            std::fs::create_dir_all(drivers.join(d)).unwrap();
            symlink(drivers.join(d), dev.join("driver")).unwrap();
            std::fs::create_dir_all(class.join(name)).unwrap();
            symlink(&dev, class.join(name).join("device")).unwrap();
        } else {
            std::fs::create_dir_all(class.join(name)).unwrap();
        }
    }
    assert_eq!(find_virtio_net(&class).as_deref(), Some("eth1"));
    assert_eq!(find_virtio_net(&root.path().join("none")), None);
}
