//! Test support shared by pinlat's integration tests (cloud-hypervisor's `test_infra` is the
//! model): the lock that keeps two guest boots off this machine's CPUs at once, a guest builder
//! that always kills QEMU and dumps the console when a test fails, and helpers to read a
//! results directory. Nothing here ships in `pinlat` or `pinlat-agent`.

mod guest;
mod lock;
mod results;

pub use guest::{static_init, Guest};
pub use lock::{BootLock, BOOT_LOCK_PATH};
pub use results::{load_runs, only_subdir, process_alive, repo};
