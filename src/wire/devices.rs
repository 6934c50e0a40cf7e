//! What the agent found of the guest's devices and what it loaded to get them: the kernel
//! modules it loaded from the initramfs (with how long each took) and the virtio devices the
//! guest kernel bound. Part of the `hello`'s [`SystemFacts`](super::SystemFacts); every field
//! defaults, so a hello from an agent that predates it still decodes.

use serde::{Deserialize, Serialize};

/// Devices and modules of the system the agent runs on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceFacts {
    /// Kernel modules the agent loaded before measuring, in load order (empty when the config
    /// listed none, or natively).
    pub modules: Vec<ModuleLoad>,
    /// Wall time of loading all of [`DeviceFacts::modules`], ns (`CLOCK_MONOTONIC`); `None`
    /// when nothing was to be loaded.
    pub modules_load_ns: Option<u64>,
    /// Devices on the virtio bus (`/sys/bus/virtio/devices/*`), in bus order.
    pub virtio: Vec<VirtioDevice>,
}

/// One kernel module the agent loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModuleLoad {
    /// Module name (`virtio_net`).
    pub name: String,
    /// Time `finit_module(2)` took, ns (`CLOCK_MONOTONIC`), including the drivers' probes.
    pub load_ns: u64,
    /// The kernel already had it (`EEXIST`: built in, or loaded before).
    pub already_loaded: bool,
}

/// One device on the virtio bus.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VirtioDevice {
    /// The bus id, e.g. `virtio0`.
    pub bus_id: String,
    /// The device type by its virtio device ID (virtio 1.2 §5): `net` (1), `block` (2),
    /// `console` (3), `entropy` (4), `balloon` (5), `scsi` (8), `9p` (9), `gpu` (16),
    /// `input` (18), `vsock` (19), `fs` (26), else `id-<n>`.
    pub kind: String,
    /// The kernel's name of what the driver made of it (`vda`, `eth0`); empty if none (no
    /// driver bound, or a kind without a block or net interface).
    pub name: String,
    /// The bound driver (`virtio_blk`, `virtio_net`); `None` if no driver is bound.
    pub driver: Option<String>,
}

/// The [`VirtioDevice::kind`] of a virtio device ID (virtio 1.2 §5, "Device Types").
pub fn virtio_kind(device_id: u32) -> String {
    match device_id {
        1 => "net".into(),
        2 => "block".into(),
        3 => "console".into(),
        4 => "entropy".into(),
        5 => "balloon".into(),
        8 => "scsi".into(),
        9 => "9p".into(),
        16 => "gpu".into(),
        18 => "input".into(),
        19 => "vsock".into(),
        26 => "fs".into(),
        n => format!("id-{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_virtio_spec() {
        assert_eq!(virtio_kind(1), "net");
        assert_eq!(virtio_kind(2), "block");
        assert_eq!(virtio_kind(99), "id-99");
    }

    #[test]
    fn absent_fields_default() {
        let d: DeviceFacts = serde_json::from_str("{}").unwrap();
        assert_eq!(d, DeviceFacts::default());
        let v: VirtioDevice = serde_json::from_str(r#"{"kind":"block"}"#).unwrap();
        assert_eq!((v.kind.as_str(), v.driver), ("block", None));
    }

    #[test]
    fn facts_from_an_older_agent_still_decode() {
        let old = r##"{"kernel_release":"6.1.0-57-rt-amd64","kernel_version":"#1 SMP PREEMPT_RT",
            "preempt_rt":true,"clocksource":"tsc","cmdline":"","isolated_cpus":"1",
            "cpu_count":2,"clock":{"source":"tsc","tsc_hz":1,"invariant_tsc":true}}"##;
        let f: super::super::SystemFacts = serde_json::from_str(old).unwrap();
        assert_eq!(f.devices, DeviceFacts::default());
    }
}
