//! CPU lists in the syntax libvirt and nova use: `0-3,^2,6`.
//!
//! One type, [`CpuSet`], parses and prints three notations found in the field:
//! - libvirt/nova CPU lists (`vcpupin cpuset=`, `cpu_dedicated_set`): ranges `a-b`,
//!   singletons `n`, and exclusions `^n` applied after every inclusion, as libvirt's
//!   `virBitmapParse` and nova's `parse_cpu_spec` do;
//! - nova's realtime mask, relative to a guest's vCPUs (`hw:cpu_realtime_mask=^0` means "all
//!   vCPUs but 0": a list of only exclusions starts from every vCPU);
//! - hexadecimal bitmasks as `taskset` takes them (`0x5` = CPUs 0 and 2).
//!
//! Printing is canonical (ascending, ranges of two or more CPUs as `a-b`, no exclusions), so
//! `parse(print(x)) == x`.

use std::collections::BTreeSet;
use std::fmt;

/// CPU numbers must be below this (the largest `NR_CPUS` a Linux x86-64 kernel is built with).
pub const MAX_CPUS: u32 = 8192;

/// Why a CPU list was refused. Every variant names the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    /// Nothing, or only separators, was given.
    #[error("empty CPU list: give CPUs like \"0-3,^2,6\"")]
    Empty,
    /// A token that is not a number, a range or an exclusion.
    #[error("\"{token}\": not a CPU number, range (a-b) or exclusion (^n)")]
    Garbage {
        /// The token as written.
        token: String,
    },
    /// Two commas with nothing between them, or a leading or trailing comma.
    #[error("\"{list}\": empty entry between commas")]
    EmptyEntry {
        /// The list as written.
        list: String,
    },
    /// `b-a` with b > a.
    #[error("\"{token}\": range end before start")]
    ReversedRange {
        /// The token as written.
        token: String,
    },
    /// `^n` where n was not included by the rest of the list.
    #[error("\"^{cpu}\": CPU {cpu} is excluded but was never included")]
    ExcludedNotIncluded {
        /// The excluded CPU.
        cpu: u32,
    },
    /// A CPU number at or above the limit.
    #[error("\"{token}\": CPU {cpu} is beyond the limit of {limit} CPUs (0-{max})", max = limit - 1)]
    BeyondLimit {
        /// The token as written.
        token: String,
        /// The CPU number as written (`u64::MAX` if it does not even fit that).
        cpu: u64,
        /// The exclusive limit that applied (`MAX_CPUS`, or a guest's vCPU count).
        limit: u32,
    },
    /// Exclusions removed every CPU.
    #[error("\"{list}\": every CPU is excluded, nothing is left")]
    AllExcluded {
        /// The list as written.
        list: String,
    },
    /// A hexadecimal mask with no bit set or bad digits.
    #[error("\"{token}\": not a hexadecimal CPU mask like 0x5")]
    BadMask {
        /// The mask as written.
        token: String,
    },
}

/// A set of CPU numbers (host pCPUs or guest vCPUs, by context).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CpuSet(BTreeSet<u32>);

impl CpuSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// `0..n`.
    pub fn first_n(n: u32) -> Self {
        (0..n).collect()
    }

    /// Parses a libvirt/nova CPU list: `0-3,^2,6`. Exclusions apply after all inclusions and
    /// must name an included CPU. Whitespace around tokens is ignored.
    pub fn parse(s: &str) -> Result<Self, CpuListError> {
        parse_list(s, MAX_CPUS, false)
    }

    /// Parses a nova realtime mask relative to a guest with `vcpus` vCPUs: `^0` means every
    /// vCPU but 0, `1-3` means exactly those. Every vCPU named must be below `vcpus`.
    pub fn parse_mask(s: &str, vcpus: u32) -> Result<Self, CpuListError> {
        parse_list(s, vcpus, true)
    }

    /// Parses a hexadecimal bitmask as `taskset` takes it (`0x5`, `0X5`, `0xff_00` not
    /// allowed; at least one bit set).
    pub fn parse_hex(s: &str) -> Result<Self, CpuListError> {
        let t = s.trim();
        let bad = || CpuListError::BadMask {
            token: t.to_string(),
        };
        let digits = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .ok_or_else(bad)?;
        if digits.is_empty() {
            return Err(bad());
        }
        let mut set = CpuSet::new();
        for (i, c) in digits.chars().rev().enumerate() {
            let nibble = c.to_digit(16).ok_or_else(bad)?;
            for bit in 0..4 {
                if nibble & (1 << bit) != 0 {
                    let cpu = u64::try_from(i * 4 + bit).unwrap_or(u64::MAX);
                    if cpu >= u64::from(MAX_CPUS) {
                        return Err(CpuListError::BeyondLimit {
                            token: t.to_string(),
                            cpu,
                            limit: MAX_CPUS,
                        });
                    }
                    set.insert(cpu as u32);
                }
            }
        }
        if set.is_empty() {
            return Err(bad());
        }
        Ok(set)
    }

    /// Parses any of the three notations: a `0x` prefix means a hexadecimal mask, anything else
    /// a CPU list.
    pub fn parse_any(s: &str) -> Result<Self, CpuListError> {
        let t = s.trim();
        if t.starts_with("0x") || t.starts_with("0X") {
            Self::parse_hex(t)
        } else {
            Self::parse(t)
        }
    }

    /// Adds a CPU. Returns whether it was new.
    pub fn insert(&mut self, cpu: u32) -> bool {
        self.0.insert(cpu)
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: u32) -> bool {
        self.0.contains(&cpu)
    }

    /// Number of CPUs in the set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// CPUs in ascending order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = u32> + ExactSizeIterator + '_ {
        self.0.iter().copied()
    }

    /// The lowest CPU, if any.
    pub fn first(&self) -> Option<u32> {
        self.0.first().copied()
    }

    /// CPUs in both sets.
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        self.0.intersection(&other.0).copied().collect()
    }

    /// CPUs in either set.
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        self.0.union(&other.0).copied().collect()
    }

    /// CPUs in `self` but not in `other`.
    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        self.0.difference(&other.0).copied().collect()
    }

    /// Whether every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Whether the sets share no CPU.
    pub fn is_disjoint(&self, other: &CpuSet) -> bool {
        self.0.is_disjoint(&other.0)
    }

    /// The set as a hexadecimal mask, `taskset` style (`0x5`); `0x0` when empty.
    pub fn to_hex(&self) -> String {
        let Some(max) = self.0.last().copied() else {
            return "0x0".to_string();
        };
        let nibbles = (max / 4 + 1) as usize;
        let mut out = String::with_capacity(nibbles + 2);
        out.push_str("0x");
        for n in (0..nibbles).rev() {
            let base = (n * 4) as u32;
            let v: u32 = (0..4)
                .filter(|b| self.contains(base + b))
                .map(|b| 1 << b)
                .sum();
            out.push(char::from_digit(v, 16).unwrap_or('0'));
        }
        out
    }
}

fn parse_cpu(num: &str, token: &str, limit: u32) -> Result<u32, CpuListError> {
    let num = num.trim();
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CpuListError::Garbage {
            token: token.to_string(),
        });
    }
    // A run of digits too long for u64 is certainly beyond the limit.
    let cpu = num.parse::<u64>().unwrap_or(u64::MAX);
    match u32::try_from(cpu) {
        Ok(c) if c < limit => Ok(c),
        _ => Err(CpuListError::BeyondLimit {
            token: token.to_string(),
            cpu,
            limit,
        }),
    }
}

fn parse_list(s: &str, limit: u32, implicit_all: bool) -> Result<CpuSet, CpuListError> {
    let mut include = CpuSet::new();
    let mut exclude = Vec::new();
    let mut tokens = 0usize;
    for raw in s.split(',') {
        let token = raw.trim();
        if token.is_empty() {
            // "0,,1" and trailing commas are garbage, an entirely empty list is Empty.
            if s.trim().is_empty() {
                return Err(CpuListError::Empty);
            }
            return Err(CpuListError::EmptyEntry {
                list: s.trim().to_string(),
            });
        }
        tokens += 1;
        if let Some(rest) = token.strip_prefix('^') {
            exclude.push(parse_cpu(rest, token, limit)?);
        } else if let Some((a, b)) = token.split_once('-') {
            let start = parse_cpu(a, token, limit)?;
            let end = parse_cpu(b, token, limit)?;
            if end < start {
                return Err(CpuListError::ReversedRange {
                    token: token.to_string(),
                });
            }
            include.0.extend(start..=end);
        } else {
            include.insert(parse_cpu(token, token, limit)?);
        }
    }
    if tokens == 0 {
        return Err(CpuListError::Empty);
    }
    if implicit_all && include.is_empty() {
        include = CpuSet::first_n(limit);
    }
    for cpu in exclude {
        if !include.0.remove(&cpu) {
            return Err(CpuListError::ExcludedNotIncluded { cpu });
        }
    }
    if include.is_empty() {
        return Err(CpuListError::AllExcluded {
            list: s.trim().to_string(),
        });
    }
    Ok(include)
}

impl FromIterator<u32> for CpuSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        CpuSet(iter.into_iter().collect())
    }
}

impl std::str::FromStr for CpuSet {
    type Err = CpuListError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_any(s)
    }
}

/// Canonical libvirt list: ascending, `a-b` for runs of two or more, empty string when empty.
impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut it = self.iter().peekable();
        let mut first = true;
        while let Some(start) = it.next() {
            let mut end = start;
            while it.peek() == Some(&(end + 1)) {
                end += 1;
                it.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if end == start {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet({self})")
    }
}

impl serde::Serialize for CpuSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CpuSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(CpuSet::new());
        }
        CpuSet::parse_any(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(v: &[u32]) -> CpuSet {
        v.iter().copied().collect()
    }

    #[test]
    fn parses_ranges_singletons_exclusions() {
        assert_eq!(CpuSet::parse("0-3,^2,6").unwrap(), set(&[0, 1, 3, 6]));
        assert_eq!(CpuSet::parse(" 5 ").unwrap(), set(&[5]));
        assert_eq!(CpuSet::parse("^1,0-2").unwrap(), set(&[0, 2]));
        assert_eq!(CpuSet::parse("3-3").unwrap(), set(&[3]));
    }

    #[test]
    fn prints_canonically() {
        assert_eq!(set(&[0, 1, 3, 6, 7, 8]).to_string(), "0-1,3,6-8");
        assert_eq!(CpuSet::parse("6,0-3,^2").unwrap().to_string(), "0-1,3,6");
        assert_eq!(CpuSet::new().to_string(), "");
    }

    #[test]
    fn errors_name_the_token() {
        assert_eq!(CpuSet::parse(""), Err(CpuListError::Empty));
        assert_eq!(CpuSet::parse("  "), Err(CpuListError::Empty));
        let e = CpuSet::parse("0,3-1").unwrap_err();
        assert_eq!(e.to_string(), "\"3-1\": range end before start");
        let e = CpuSet::parse("0-3,^5").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"^5\": CPU 5 is excluded but was never included"
        );
        let e = CpuSet::parse("0,9000").unwrap_err();
        assert!(
            e.to_string().starts_with("\"9000\": CPU 9000 is beyond"),
            "{e}"
        );
        let e = CpuSet::parse("0,x").unwrap_err();
        assert!(e.to_string().starts_with("\"x\": not a CPU number"), "{e}");
        assert_eq!(
            CpuSet::parse("1,,2").unwrap_err().to_string(),
            "\"1,,2\": empty entry between commas"
        );
        assert!(matches!(
            CpuSet::parse("1-2-3"),
            Err(CpuListError::Garbage { .. })
        ));
        assert!(matches!(
            CpuSet::parse("-1"),
            Err(CpuListError::Garbage { .. })
        ));
        assert!(matches!(
            CpuSet::parse("1,^1"),
            Err(CpuListError::AllExcluded { .. })
        ));
        assert_eq!(
            CpuSet::parse("99999999999999").unwrap_err().to_string(),
            "\"99999999999999\": CPU 99999999999999 is beyond the limit of 8192 CPUs (0-8191)"
        );
    }

    #[test]
    fn realtime_mask_is_relative_to_vcpus() {
        assert_eq!(CpuSet::parse_mask("^0", 4).unwrap(), set(&[1, 2, 3]));
        assert_eq!(CpuSet::parse_mask("^0,^1", 4).unwrap(), set(&[2, 3]));
        assert_eq!(CpuSet::parse_mask("2-3", 4).unwrap(), set(&[2, 3]));
        let e = CpuSet::parse_mask("2-7", 4).unwrap_err();
        assert_eq!(
            e,
            CpuListError::BeyondLimit {
                token: "2-7".into(),
                cpu: 7,
                limit: 4
            }
        );
        assert!(matches!(
            CpuSet::parse_mask("^0", 1),
            Err(CpuListError::AllExcluded { .. })
        ));
    }

    #[test]
    fn hex_masks() {
        assert_eq!(CpuSet::parse_hex("0x5").unwrap(), set(&[0, 2]));
        assert_eq!(CpuSet::parse_any("0xf0").unwrap(), set(&[4, 5, 6, 7]));
        assert_eq!(set(&[0, 2]).to_hex(), "0x5");
        assert_eq!(set(&[4, 5, 6, 7]).to_hex(), "0xf0");
        assert!(CpuSet::parse_hex("0x0").is_err());
        assert!(CpuSet::parse_hex("0xg").is_err());
        assert!(CpuSet::parse_hex("5").is_err());
    }

    #[test]
    fn serde_uses_the_list_syntax() {
        let s = set(&[0, 1, 5]);
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, "\"0-1,5\"");
        assert_eq!(serde_json::from_str::<CpuSet>(&j).unwrap(), s);
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(cpus in proptest::collection::btree_set(0u32..MAX_CPUS, 1..64)) {
            let s: CpuSet = cpus.into_iter().collect();
            prop_assert_eq!(CpuSet::parse(&s.to_string()).unwrap(), s.clone());
            prop_assert_eq!(CpuSet::parse_hex(&s.to_hex()).unwrap(), s);
        }

        #[test]
        fn never_panics(input in "\\PC{0,40}") {
            let _ = CpuSet::parse(&input);
            let _ = CpuSet::parse_mask(&input, 16);
            let _ = CpuSet::parse_any(&input);
        }

        #[test]
        fn list_grammar_is_honoured(
            ranges in proptest::collection::vec((0u32..200, 0u32..8), 1..6),
            excl in proptest::collection::vec(0u32..200, 0..3),
        ) {
            let mut expect = CpuSet::new();
            let mut toks = Vec::new();
            for (a, w) in &ranges {
                toks.push(if *w == 0 { a.to_string() } else { format!("{a}-{}", a + w) });
                expect.0.extend(*a..=a + w);
            }
            let mut ok = true;
            for e in &excl {
                toks.push(format!("^{e}"));
                ok &= expect.0.remove(e);
            }
            let r = CpuSet::parse(&toks.join(","));
            if ok && !expect.is_empty() {
                prop_assert_eq!(r.unwrap(), expect);
            } else {
                prop_assert!(r.is_err());
            }
        }
    }
}
