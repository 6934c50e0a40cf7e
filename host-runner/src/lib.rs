//! The host runner's library: everything `pinlat` does beyond the pure model.

pub mod cli;
pub mod affinity;
pub mod initramfs;
pub mod kernel;
pub mod procfs;
pub mod qemu;
pub mod qmp;
