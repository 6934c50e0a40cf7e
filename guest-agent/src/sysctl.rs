//! The run's guest sysctls ([`pinlat::agentcfg::AgentConfig::sysctls`]): written under
//! `<root>/proc/sys` before the agent says hello, each read back. A sysctl that cannot be
//! written, or reads back another value, means the variant did not apply: the run fails,
//! naming the key and the errno, rather than measuring a guest that is not the one asked for.
//!
//! `root` is `/` in a guest and a fake tree in tests.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use pinlat::agentcfg::{sysctl_matches, sysctl_path, Sysctl};
use pinlat::wire::SysctlReadBack;

/// A guest sysctl that did not apply.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Opening or writing the file failed.
    #[error("Guest sysctl {key} = {value:?} did not apply: writing {} failed: {}", path.display(), errno(source))]
    Write {
        /// The key.
        key: String,
        /// The value written.
        value: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Reading it back failed.
    #[error("Guest sysctl {key}: reading {} back failed: {}", path.display(), errno(source))]
    Read {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// It reads back another value (the kernel clamped or refused it silently).
    #[error("Guest sysctl {key} did not apply: wrote {written:?}, {} reads {read:?}", path.display())]
    Mismatch {
        /// The key.
        key: String,
        /// The file.
        path: PathBuf,
        /// The value written.
        written: String,
        /// The value read back.
        read: String,
    },
}

/// `EINVAL (Invalid argument)` for an OS error, else the error as it prints.
fn errno(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let n = nix::errno::Errno::from_raw(code);
            format!("{n:?} ({})", n.desc())
        }
        None => e.to_string(),
    }
}

/// The file of `key` under `root`.
fn path_under(root: &Path, key: &str) -> PathBuf {
    root.join(sysctl_path(key).trim_start_matches('/'))
}

/// Writes every sysctl in order and reads each back; stops at the first that does not apply.
pub fn apply(root: &Path, sysctls: &[Sysctl]) -> Result<Vec<SysctlReadBack>, SysctlError> {
    let mut out = Vec::with_capacity(sysctls.len());
    for s in sysctls {
        let path = path_under(root, &s.key);
        // Never create: a key the kernel does not have is an error, not a new file. Truncate
        // as procps' `sysctl -w` does (procfs ignores it; a plain file in tests needs it).
        let written = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{}\n", s.value).as_bytes()));
        if let Err(source) = written {
            return Err(SysctlError::Write {
                key: s.key.clone(),
                value: s.value.clone(),
                path,
                source,
            });
        }
        let read = std::fs::read_to_string(&path)
            .map_err(|source| SysctlError::Read {
                key: s.key.clone(),
                path: path.clone(),
                source,
            })?
            .trim()
            .to_string();
        if !sysctl_matches(&s.value, &read) {
            return Err(SysctlError::Mismatch {
                key: s.key.clone(),
                path,
                written: s.value.clone(),
                read,
            });
        }
        out.push(SysctlReadBack {
            key: s.key.clone(),
            written: s.value.clone(),
            read,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn sysctl(key: &str, value: &str) -> Sysctl {
        Sysctl {
            key: key.into(),
            value: value.into(),
        }
    }

    /// A fake `/proc/sys` with `kernel.timer_migration` and `kernel.sched_rt_runtime_us`.
    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("proc/sys/kernel");
        fs::create_dir_all(&k).unwrap();
        fs::write(k.join("timer_migration"), "1\n").unwrap();
        fs::write(k.join("sched_rt_runtime_us"), "950000\n").unwrap();
        d
    }

    #[test]
    fn writes_in_order_and_reads_back() {
        let d = root();
        let got = apply(
            d.path(),
            &[
                sysctl("kernel.timer_migration", "0"),
                sysctl("kernel.sched_rt_runtime_us", "-1"),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                SysctlReadBack {
                    key: "kernel.timer_migration".into(),
                    written: "0".into(),
                    read: "0".into()
                },
                SysctlReadBack {
                    key: "kernel.sched_rt_runtime_us".into(),
                    written: "-1".into(),
                    read: "-1".into()
                }
            ]
        );
        let on_disk =
            fs::read_to_string(d.path().join("proc/sys/kernel/sched_rt_runtime_us")).unwrap();
        assert_eq!(on_disk, "-1\n");
        assert!(apply(d.path(), &[]).unwrap().is_empty());
    }

    #[test]
    fn a_missing_key_fails_naming_it_and_the_errno_without_creating_it() {
        let d = root();
        let err = apply(
            d.path(),
            &[
                sysctl("kernel.timer_migration", "0"),
                sysctl("kernel.no_such_knob", "1"),
            ],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("kernel.no_such_knob"), "{text}");
        assert!(
            text.contains("ENOENT (No such file or directory)"),
            "{text}"
        );
        assert!(!d.path().join("proc/sys/kernel/no_such_knob").exists());
    }

    #[test]
    fn a_read_only_file_fails_with_its_errno() {
        let d = root();
        // A directory where the file should be: opening it for writing is EISDIR, whoever runs
        // the test (root ignores file modes).
        fs::create_dir_all(d.path().join("proc/sys/vm/stat_interval")).unwrap();
        let err = apply(d.path(), &[sysctl("vm.stat_interval", "10")]).unwrap_err();
        assert!(err.to_string().contains("EISDIR"), "{err}");
    }

    #[test]
    fn a_value_that_reads_back_otherwise_did_not_apply() {
        let d = root();
        // A kernel that clamps or ignores a value shows another one after the write;
        // /dev/null stands for such a file (the write vanishes, the read is empty).
        let k = d.path().join("proc/sys/kernel/timer_migration");
        fs::remove_file(&k).unwrap();
        std::os::unix::fs::symlink("/dev/null", &k).unwrap();
        let err = apply(d.path(), &[sysctl("kernel.timer_migration", "0")]).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, SysctlError::Mismatch { .. }) && text.contains("reads \"\""),
            "{text}"
        );
    }
}
