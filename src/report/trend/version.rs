//! Kernel releases (`uname -r`) in version order, so that a trend by kernel reads left to right
//! as the builds came: `6.1.0-9` < `6.1.0-10` < `6.1.10`, Debian's `6.1.0-27-rt-amd64` <
//! `6.1.0-28-rt-amd64`, upstream's `6.12.0-rt5` < `6.12.0-rt10`, and a release candidate before
//! its release (`6.12.0-rc7` < `6.12.0`).
//!
//! The order is Debian's version comparison (the Debian Policy Manual, "Version", the
//! `upstream_version` rule) applied to the whole release string: it alternates between a run of
//! non-digits, compared character by character, and a run of digits, compared as a number
//! (leading zeros ignored). In a non-digit run `~` sorts before the end of the run, the end
//! before any letter, and letters before every other character; a missing run is empty (and a
//! missing number 0). The one kernel-specific step: `-rc<N>` and `.rc<N>` are read as `~rc<N>`,
//! so a release candidate sorts before its release as Debian's own kernel versions spell it.
//!
//! Two releases that this comparison finds equal but are spelt differently (`6.01` and `6.1`)
//! are ordered by their text, so the order is total and equal only for the same string.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A kernel release as `uname -r` prints it, ordered as a version ([the module](self)).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KernelRelease(pub String);

impl KernelRelease {
    /// The release text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KernelRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl Ord for KernelRelease {
    fn cmp(&self, other: &Self) -> Ordering {
        version_cmp(&self.0, &other.0).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for KernelRelease {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `s` with every `-rc<digit>` or `.rc<digit>` written `~rc<digit>`.
fn normalise(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = b.to_vec();
    for i in 0..b.len() {
        let pre = matches!(b[i], b'-' | b'.');
        if pre && b[i + 1..].starts_with(b"rc") && b.get(i + 3).is_some_and(u8::is_ascii_digit) {
            out[i] = b'~';
        }
    }
    out
}

/// The weight of one character of a non-digit run (`None`: the run has ended).
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Splits the leading run of `s` where `digit(c)` holds.
fn split_run(s: &[u8], digit: bool) -> (&[u8], &[u8]) {
    let n = s
        .iter()
        .position(|c| c.is_ascii_digit() != digit)
        .unwrap_or(s.len());
    s.split_at(n)
}

/// Two runs of digits as numbers, of any length.
fn cmp_number(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| -> usize { s.iter().take_while(|c| **c == b'0').count() };
    let (a, b) = (&a[strip(a)..], &b[strip(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Two runs of non-digits, the shorter one padded with the end's weight.
fn cmp_text(a: &[u8], b: &[u8]) -> Ordering {
    (0..a.len().max(b.len()))
        .map(|i| weight(a.get(i).copied()).cmp(&weight(b.get(i).copied())))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// The version order of two releases, without the final tie-break on the text.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (na, nb) = (normalise(a), normalise(b));
    let (mut a, mut b) = (na.as_slice(), nb.as_slice());
    while !a.is_empty() || !b.is_empty() {
        let ((ta, ra), (tb, rb)) = (split_run(a, false), split_run(b, false));
        let o = cmp_text(ta, tb);
        if o.is_ne() {
            return o;
        }
        let ((da, ra), (db, rb)) = (split_run(ra, true), split_run(rb, true));
        let o = cmp_number(da, db);
        if o.is_ne() {
            return o;
        }
        (a, b) = (ra, rb);
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn k(s: &str) -> KernelRelease {
        KernelRelease(s.to_string())
    }

    /// Each list is in ascending order, every pair.
    #[test]
    fn releases_sort_as_their_builds_came() {
        for list in [
            &["6.1.0-9", "6.1.0-10", "6.1.10"][..],
            &[
                "6.1.0-9-rt-amd64",
                "6.1.0-27-rt-amd64",
                "6.1.0-28-rt-amd64",
                "6.1.10-rt-amd64",
                "6.12.6-rt-amd64",
            ],
            &[
                "6.6.30-rt30",
                "6.12.0-rc7",
                "6.12.0",
                "6.12.0-rt5",
                "6.12.0-rt10",
                "6.12.1-rt1",
            ],
            &[
                "5.15.0-1060-realtime",
                "6.8.0-45-generic",
                "6.8.0-100-generic",
            ],
            &["6.12.0-rc1-rt1", "6.12.0-rc2-rt1", "6.12.0-rt1"],
        ] {
            for (i, a) in list.iter().enumerate() {
                for b in &list[i + 1..] {
                    assert_eq!(k(a).cmp(&k(b)), Ordering::Less, "{a} < {b}");
                    assert_eq!(k(b).cmp(&k(a)), Ordering::Greater, "{b} > {a}");
                }
            }
        }
    }

    #[test]
    fn equal_versions_spelt_differently_are_ordered_by_their_text() {
        assert_eq!(version_cmp("6.01", "6.1"), Ordering::Equal);
        assert_eq!(k("6.01").cmp(&k("6.1")), Ordering::Less);
        assert_eq!(k("6.1").cmp(&k("6.1")), Ordering::Equal);
        // Numbers longer than any integer type still compare.
        assert_eq!(
            version_cmp("1.99999999999999999999999", "1.100000000000000000000000"),
            Ordering::Less
        );
    }

    /// Release strings as kernels spell them, and some that no kernel would.
    fn release() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9]{1,2}(\\.[0-9]{1,2}){0,3}(-(rc|rt)?[0-9]{1,3}){0,2}(-[a-z0-9]{1,6}){0,2}",
            "[0-9a-z.~+_-]{0,10}",
            ".{0,8}",
        ]
    }

    proptest! {
        #[test]
        fn the_order_is_total_and_consistent(a in release(), b in release(), c in release()) {
            let (ka, kb, kc) = (k(&a), k(&b), k(&c));
            // Antisymmetric, and equal only for the same text.
            prop_assert_eq!(ka.cmp(&kb), kb.cmp(&ka).reverse());
            prop_assert_eq!(ka.cmp(&kb) == Ordering::Equal, a == b);
            prop_assert_eq!(ka.cmp(&ka), Ordering::Equal);
            // Transitive.
            if ka <= kb && kb <= kc {
                prop_assert!(ka <= kc, "{a:?} <= {b:?} <= {c:?}");
            }
            if ka >= kb && kb >= kc {
                prop_assert!(ka >= kc, "{a:?} >= {b:?} >= {c:?}");
            }
            // The version comparison alone is a preorder consistent with the total order.
            if version_cmp(&a, &b).is_lt() {
                prop_assert!(ka < kb);
            }
        }

        #[test]
        fn sorting_any_list_gives_one_order(mut v in proptest::collection::vec(release(), 0..12)) {
            let mut a: Vec<KernelRelease> = v.iter().map(|s| k(s)).collect();
            v.reverse();
            let mut b: Vec<KernelRelease> = v.iter().map(|s| k(s)).collect();
            a.sort();
            b.sort();
            prop_assert_eq!(&a, &b);
            prop_assert!(a.windows(2).all(|w| w[0] <= w[1]));
        }

        /// A bump of the last number of a release sorts after it.
        #[test]
        fn a_later_build_number_sorts_later(base in "[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}-", n in 0u32..10_000) {
            let a = format!("{base}{n}-rt-amd64");
            let b = format!("{base}{}-rt-amd64", n + 1);
            prop_assert!(k(&a) < k(&b));
        }
    }
}
