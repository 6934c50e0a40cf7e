use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[test]
fn disk_is_sparse_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let disk = VirtioBlk::in_dir(dir.path(), 64);
    create_disk(&disk).unwrap();
    let meta = fs::metadata(&disk.image).unwrap();
    assert_eq!(meta.len(), 64 << 20);
    assert!(
        meta.blocks() * 512 < 1 << 20,
        "not sparse: {} blocks",
        meta.blocks()
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let err = create_disk(&disk).unwrap_err();
    assert!(matches!(err, DeviceError::CreateImage { .. }));
    assert!(err.to_string().contains("disk0.raw"), "{err}");
    let missing = VirtioBlk::in_dir(&dir.path().join("no/such/dir"), 1);
    let err = create_disk(&missing).unwrap_err();
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn native_aio_needs_direct_io() {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = VirtioBlk::in_dir(dir.path(), 1);
    disk.aio = Aio::Native;
    disk.cache = Cache::Writeback;
    let err = create_disk(&disk).unwrap_err();
    assert!(err.to_string().contains("cache=writeback"), "{err}");
    assert!(!disk.image.exists());
    disk.cache = Cache::Directsync;
    create_disk(&disk).unwrap();
}

#[test]
fn cache_modes_as_qemu_defines_them() {
    let t = |c: Cache| (c.as_str(), c.direct(), c.write_cache());
    assert_eq!(t(Cache::None), ("none", true, true));
    assert_eq!(t(Cache::Writeback), ("writeback", false, true));
    assert_eq!(t(Cache::Writethrough), ("writethrough", false, false));
    assert_eq!(t(Cache::Directsync), ("directsync", true, false));
}

#[test]
fn needs_name_the_device_and_scenario() {
    let dir = Path::new("/run/p");
    let devs = [
        Device::VirtioBlk(VirtioBlk::in_dir(dir, 1)),
        Device::VirtioNet(VirtioNet::in_dir(dir)),
    ];
    let n = needs(&devs, "guest-io");
    let mods: Vec<&str> = n.iter().map(|n| n.module.as_str()).collect();
    assert_eq!(
        mods,
        ["virtio_pci", "virtio_blk", "virtio_pci", "virtio_net"]
    );
    assert_eq!(n[3].needed_by, "the virtio-net NIC of scenario guest-io");
    // The Debian cache holds every module a device needs.
    for d in &devs {
        for m in d.modules() {
            assert!(crate::kernel::DEVICE_MODULES.contains(m), "{m}");
        }
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

#[test]
fn echo_sends_whole_frames_back() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("net0.sock");
    let echo = NetEcho::start(&sock).unwrap();
    assert!(NetEcho::start(&sock).is_err(), "the socket is taken");
    let mut c = UnixStream::connect(&sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (a, b) = (frame(&[0xaa; 60]), frame(&[0x55; 1514]));
    let mut sent = a.clone();
    sent.extend_from_slice(&b);
    // Split mid-header and mid-frame: the echo waits for whole frames.
    for chunk in [&sent[..2], &sent[2..70], &sent[70..]] {
        c.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut back = vec![0u8; sent.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, sent);
    let s = echo.stats();
    assert_eq!((s.connections, s.frames, s.bytes), (1, 2, 60 + 1514));
    drop(c);
    let stats = echo.stop().unwrap();
    assert_eq!(stats.frames, 2);
    assert!(!sock.exists(), "socket removed");
}

#[test]
fn echo_drops_a_connection_that_is_not_qemus_framing() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("n.sock");
    let echo = NetEcho::start(&sock).unwrap();
    let mut c = UnixStream::connect(&sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "closed, nothing echoed");
    // The service lives on for the next connection.
    let mut c = UnixStream::connect(&sock).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&frame(b"hi")).unwrap();
    let mut back = [0u8; 6];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back[4..], b"hi");
    assert_eq!(echo.stats().connections, 2);
}

#[test]
fn bind_errors_name_the_socket() {
    let err = NetEcho::start(Path::new("/nonexistent/dir/net0.sock")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/dir/net0.sock"),
        "{err}"
    );
}
