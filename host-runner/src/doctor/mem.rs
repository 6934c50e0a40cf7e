//! Memory-management daemons that stall guests: transparent huge pages (khugepaged compaction)
//! and KSM (ksmd merging guest pages, then copy-on-write faults). tuned's realtime profiles turn
//! THP to `never` and stop KSM.

use super::{Check, Env};

pub(super) fn checks(env: &Env) -> Vec<Check> {
    vec![thp(env), ksm(env)]
}

/// The bracketed choice of a sysfs selector such as `always [madvise] never`.
pub(crate) fn selected(text: &str) -> Option<&str> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(&text[start..end])
}

fn thp(env: &Env) -> Check {
    const ID: &str = "mem.thp";
    let Some(text) = env
        .root
        .read_trim("sys/kernel/mm/transparent_hugepage/enabled")
    else {
        return Check::pass(ID, "transparent huge pages not built in");
    };
    match selected(&text) {
        Some("always") => Check::warn(
            ID,
            "transparent_hugepage=always: khugepaged collapses and compacts behind the guests",
            "echo never > /sys/kernel/mm/transparent_hugepage/enabled (or transparent_hugepage=never); back guests with static hugepages",
        ),
        Some(v) => Check::pass(ID, format!("transparent_hugepage={v}")),
        None => Check::skip(ID, format!("unrecognised THP setting {text:?}")),
    }
}

fn ksm(env: &Env) -> Check {
    const ID: &str = "mem.ksm";
    match env.root.read_trim("sys/kernel/mm/ksm/run").as_deref() {
        None => Check::pass(ID, "KSM not built in"),
        Some("0") => Check::pass(ID, "KSM stopped (run=0)"),
        Some(v) => Check::warn(
            ID,
            format!("KSM running (run={v}): ksmd merges guest pages and later writes fault"),
            "echo 2 > /sys/kernel/mm/ksm/run and disable ksm/ksmtuned services",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_reads_the_bracketed_choice() {
        assert_eq!(selected("always [madvise] never"), Some("madvise"));
        assert_eq!(selected("[always] madvise never"), Some("always"));
        assert_eq!(selected("always madvise never"), None);
    }
}
