//! Guest sysctls as the agent config carries them ([`super::AgentConfig::sysctls`]): plain data,
//! because the agent links the core without the `host` feature (and so without `config`). A
//! variant's `guest.sysctls` (`crate::config::variant::GuestKnobs`) become these, in key order;
//! the agent writes each under `/proc/sys` before it measures and reads it back.

use serde::{Deserialize, Serialize};

/// Longest sysctl value accepted, bytes.
pub const MAX_SYSCTL_VALUE_BYTES: usize = 256;

/// One sysctl to set in the guest: `key` (`kernel.timer_migration`) and the value to write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sysctl {
    /// Dotted name under `/proc/sys` ([`valid_sysctl_key`]).
    pub key: String,
    /// The value as written to the file ([`valid_sysctl_value`]).
    pub value: String,
}

/// Sysctl keys the agent may write: dotted names of `a-z`, `0-9` and `_` under `/proc/sys`
/// (no `/`, no empty component, so the path never leaves `/proc/sys`).
pub fn valid_sysctl_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// Sysctl values the agent may write: 1–[`MAX_SYSCTL_VALUE_BYTES`] bytes on one line.
pub fn valid_sysctl_value(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_SYSCTL_VALUE_BYTES && !value.contains(['\n', '\0'])
}

/// The `/proc/sys` path of a sysctl key (`kernel.timer_migration` →
/// `/proc/sys/kernel/timer_migration`).
pub fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Whether a value read back from a sysctl file is the value written: the same
/// whitespace-separated fields (the kernel prints multi-field values with tabs).
pub fn sysctl_matches(written: &str, read: &str) -> bool {
    written.split_whitespace().eq(read.split_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dotted_proc_sys_names() {
        assert!(valid_sysctl_key("kernel.sched_rt_runtime_us"));
        for bad in ["", ".a", "a.", "a..b", "kernel/x", "Kernel.x", "a b"] {
            assert!(!valid_sysctl_key(bad), "{bad:?}");
        }
        assert_eq!(
            sysctl_path("kernel.timer_migration"),
            "/proc/sys/kernel/timer_migration"
        );
    }

    #[test]
    fn values_are_one_short_line() {
        assert!(valid_sysctl_value("-1") && valid_sysctl_value("4 4 1 7"));
        assert!(!valid_sysctl_value("") && !valid_sysctl_value("1\n2"));
        assert!(!valid_sysctl_value(&"1".repeat(MAX_SYSCTL_VALUE_BYTES + 1)));
    }

    #[test]
    fn read_back_compares_fields() {
        assert!(sysctl_matches("4 4 1 7", "4\t4\t1\t7"));
        assert!(sysctl_matches("-1", "-1\n"));
        assert!(!sysctl_matches("0", "1") && !sysctl_matches("01", "1"));
    }
}
