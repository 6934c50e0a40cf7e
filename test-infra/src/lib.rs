//! Test support shared by pinlat's tests and developer tasks (cloud-hypervisor's `test_infra` is
//! the model): the lock that keeps two guest boots off this machine's CPUs at once, a guest
//! builder that always kills QEMU and dumps the console when a test fails, helpers to read a
//! results directory (feature `guest`), and the one builder of deterministic run records and
//! results directories (feature `fixtures`), used by pinlat's `core` tests and
//! `cargo xtask gen-runs`. Nothing here ships in `pinlat` or `pinlat-agent`.

#[cfg(feature = "fixtures")]
pub mod fixtures;
#[cfg(feature = "guest")]
mod guest;
#[cfg(feature = "guest")]
pub mod libvirtd;
mod lock;
#[cfg(feature = "guest")]
mod results;

#[cfg(feature = "guest")]
pub use guest::{static_init, Guest};
#[cfg(feature = "guest")]
pub use libvirtd::PrivateLibvirtd;
pub use lock::{BootLock, BOOT_LOCK_PATH};
#[cfg(feature = "guest")]
pub use results::{load_runs, only_subdir, process_alive, repo};
