//! The host runner's library: everything `pinlat` does beyond the pure model.

pub mod accel;
pub mod agent;
pub mod calibrate;
pub mod cgroup;
pub mod cli;
pub mod devices;
pub mod disturb;
pub mod doctor;
pub mod engine;
pub mod exit;
pub mod follow;
pub mod hostfacts;
pub mod initramfs;
pub mod kernel;
pub mod pin;
pub mod procfs;
pub mod qemu;
pub mod qmp;
pub mod report_cmd;
pub mod run;
pub mod signals;
pub mod steal;
pub mod store;
pub mod thread_cpu;
pub mod trace;
pub mod validate;
