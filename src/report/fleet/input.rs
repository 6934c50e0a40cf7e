//! What `pinlat merge` is given, and what each host is called.
//!
//! `[LABEL=]DIR`: a results directory, optionally with the host's name. The text before the
//! first `=` is a label when it is not empty and holds no `/`; so `./a=b` and `/data/x=1` are
//! directories whose names contain `=`, and `=dir`, `lab1=` and `my host=dir` are refused.
//! `--failed-host NAME[:REASON]`: a host that produced no results, with why.
//!
//! Labels ([`assign`]): the given label, else `host.json`'s hostname, else the directory's
//! name. Two directories whose hostnames (or names) are the same are told apart by the shortest
//! tail of their paths that differs (`lab1 (run-2)`), and the report says so; given labels
//! must be unique.

use std::path::{Path, PathBuf};

use super::LabelSource;

/// A command-line input that cannot be used (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// `=DIR`.
    #[error("'{0}': no label before '=': write LABEL=DIR, or DIR alone to label the host by its hostname")]
    EmptyLabel(String),
    /// `LABEL=`, or an empty argument.
    #[error("'{0}': no directory: write DIR or LABEL=DIR")]
    EmptyDir(String),
    /// A label with a space, a control character or a `/`.
    #[error("'{arg}': label '{label}' contains {what}: a label is one word without '/' (e.g. rt-lab-07)")]
    BadLabel {
        /// The argument.
        arg: String,
        /// The label.
        label: String,
        /// What it contains.
        what: &'static str,
    },
    /// The same label given to two directories.
    #[error("label '{0}' is given to two directories: give each host its own label")]
    DuplicateLabel(String),
    /// `--failed-host :REASON` or an empty value.
    #[error("--failed-host '{0}': no host name: write NAME or NAME:REASON")]
    EmptyName(String),
}

/// Why a label is malformed, if it is.
fn label_problem(label: &str) -> Option<&'static str> {
    if label.contains('/') {
        Some("'/'")
    } else if label.chars().any(char::is_whitespace) {
        Some("white space")
    } else if label.chars().any(char::is_control) {
        Some("a control character")
    } else {
        None
    }
}

/// One `[LABEL=]DIR` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostArg {
    /// The label given, if any.
    pub label: Option<String>,
    /// The results directory.
    pub dir: PathBuf,
}

impl HostArg {
    /// Parses `[LABEL=]DIR`.
    pub fn parse(arg: &str) -> Result<HostArg, InputError> {
        match arg.split_once('=') {
            Some((label, dir)) if !label.contains('/') => {
                if label.is_empty() {
                    return Err(InputError::EmptyLabel(arg.into()));
                }
                if dir.is_empty() {
                    return Err(InputError::EmptyDir(arg.into()));
                }
                if let Some(what) = label_problem(label) {
                    return Err(InputError::BadLabel {
                        arg: arg.into(),
                        label: label.into(),
                        what,
                    });
                }
                Ok(HostArg {
                    label: Some(label.into()),
                    dir: dir.into(),
                })
            }
            _ if arg.is_empty() => Err(InputError::EmptyDir(arg.into())),
            _ => Ok(HostArg {
                label: None,
                dir: arg.into(),
            }),
        }
    }
}

/// Refuses a label given to two directories.
pub fn check_unique(args: &[HostArg]) -> Result<(), InputError> {
    for (i, a) in args.iter().enumerate() {
        if let Some(l) = &a.label {
            if args[..i].iter().any(|b| b.label.as_ref() == Some(l)) {
                return Err(InputError::DuplicateLabel(l.clone()));
            }
        }
    }
    Ok(())
}

/// One `--failed-host NAME[:REASON]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedHostArg {
    /// The host's name (a label).
    pub name: String,
    /// Why it failed, when given.
    pub reason: Option<String>,
}

impl FailedHostArg {
    /// Parses `NAME[:REASON]` (the name ends at the first `:`).
    pub fn parse(arg: &str) -> Result<FailedHostArg, InputError> {
        let (name, reason) = match arg.split_once(':') {
            Some((n, r)) => (n.trim(), Some(r.trim()).filter(|r| !r.is_empty())),
            None => (arg.trim(), None),
        };
        if name.is_empty() {
            return Err(InputError::EmptyName(arg.into()));
        }
        if let Some(what) = label_problem(name) {
            return Err(InputError::BadLabel {
                arg: arg.into(),
                label: name.into(),
                what,
            });
        }
        Ok(FailedHostArg {
            name: name.into(),
            reason: reason.map(String::from),
        })
    }

    /// The reason, or what to say without one.
    pub fn reason_text(&self) -> String {
        self.reason
            .clone()
            .unwrap_or_else(|| "given as failed with --failed-host (no reason given)".into())
    }
}

/// Orders labels as people number hosts: runs of digits by their value, so `lab2` comes
/// before `lab10`; otherwise by characters.
pub fn label_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (x, y) = (chunks(a), chunks(b));
    for (p, q) in x.iter().zip(&y) {
        let o = match (p, q) {
            ((true, m), (true, n)) => {
                let (m, n) = (m.trim_start_matches('0'), n.trim_start_matches('0'));
                m.len().cmp(&n.len()).then_with(|| m.cmp(n))
            }
            _ => p.1.cmp(q.1),
        };
        if o.is_ne() {
            return o;
        }
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

/// What is known of one directory when labels are assigned.
#[derive(Debug, Clone, Copy)]
pub struct LabelInput<'a> {
    /// `LABEL=` given.
    pub given: Option<&'a str>,
    /// `host.json`'s hostname.
    pub hostname: Option<&'a str>,
    /// The directory as given.
    pub dir: &'a Path,
}

/// The last `k` components of `dir` (as given; `.` and a trailing `/` dropped), `/`-joined.
fn tail(dir: &Path, k: usize) -> String {
    let parts: Vec<String> = dir
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let from = parts.len().saturating_sub(k);
    parts[from..].join("/")
}

/// Labels for every directory, in order, with how each was chosen: the given label, else the
/// hostname, else the directory's name. Labels that are not given and equal another
/// directory's get the shortest tail of the path that tells the colliding ones apart
/// (`lab1 (b/results)`); a path given twice gets `#2`.
pub fn assign(inputs: &[LabelInput<'_>]) -> Vec<(String, LabelSource)> {
    let mut out: Vec<(String, LabelSource)> = inputs
        .iter()
        .map(|i| match (i.given, i.hostname) {
            (Some(g), _) => (g.to_string(), LabelSource::Given),
            (None, Some(h)) => (h.to_string(), LabelSource::Hostname),
            (None, None) => {
                let name = tail(i.dir, 1);
                (
                    if name.is_empty() {
                        i.dir.display().to_string()
                    } else {
                        name
                    },
                    LabelSource::Directory,
                )
            }
        })
        .collect();
    let base: Vec<String> = out.iter().map(|(l, _)| l.clone()).collect();
    for (i, inp) in inputs.iter().enumerate() {
        if out[i].1 == LabelSource::Given {
            continue;
        }
        let clash: Vec<usize> = (0..inputs.len()).filter(|&j| base[j] == base[i]).collect();
        if clash.len() < 2 {
            continue;
        }
        let depth = inputs
            .iter()
            .map(|x| x.dir.components().count())
            .max()
            .unwrap_or(1);
        let suffix = (1..=depth)
            .map(|k| {
                (
                    k,
                    clash
                        .iter()
                        .map(|&j| tail(inputs[j].dir, k))
                        .collect::<Vec<_>>(),
                )
            })
            .find(|(_, tails)| {
                tails
                    .iter()
                    .enumerate()
                    .all(|(a, t)| tails.iter().skip(a + 1).all(|u| u != t))
            })
            .map_or_else(|| tail(inp.dir, depth), |(k, _)| tail(inp.dir, k));
        out[i] = (
            format!("{} ({suffix})", base[i]),
            LabelSource::Disambiguated,
        );
    }
    // A path given twice, or a label made equal to another: number the later ones.
    for i in 0..out.len() {
        let mut n = 1;
        while out[..i].iter().any(|(l, _)| *l == out[i].0) {
            n += 1;
            let stem = out[i].0.split(" #").next().unwrap_or_default().to_string();
            out[i].0 = format!("{stem} #{n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `LABEL=DIR` with a well-formed label gives both back; any text parses or is refused
        /// without a panic, and a directory is never empty.
        #[test]
        fn label_and_dir_round_trip(label in "[A-Za-z0-9][A-Za-z0-9._:@-]{0,20}", dir in "[^\\x00]{1,30}") {
            let a = HostArg::parse(&format!("{label}={dir}")).unwrap();
            prop_assert_eq!(a.label.as_deref(), Some(label.as_str()));
            prop_assert_eq!(a.dir, PathBuf::from(dir));
        }

        #[test]
        fn any_text_parses_or_is_refused(s in "\\PC{0,40}") {
            if let Ok(a) = HostArg::parse(&s) {
                prop_assert!(!a.dir.as_os_str().is_empty());
                if let Some(l) = a.label {
                    prop_assert!(label_problem(&l).is_none() && !l.is_empty());
                }
            }
            if let Ok(f) = FailedHostArg::parse(&s) {
                prop_assert!(!f.name.is_empty() && label_problem(&f.name).is_none());
            }
        }

        /// Labels assigned to any directories are unique.
        #[test]
        fn assigned_labels_are_unique(
            hosts in proptest::collection::vec(
                (proptest::option::of("[ab]"), proptest::option::of("[xy]"), "[pq]{1,2}(/[pq]{1,2}){0,2}"),
                1..8,
            )
        ) {
            let given: Vec<Option<String>> = {
                let mut seen = Vec::new();
                hosts.iter().map(|(g, _, _)| g.clone().filter(|g| {
                    let fresh = !seen.contains(g);
                    seen.push(g.clone());
                    fresh
                })).collect()
            };
            let inputs: Vec<LabelInput<'_>> = hosts
                .iter()
                .zip(&given)
                .map(|((_, h, d), g)| LabelInput {
                    given: g.as_deref(),
                    hostname: h.as_deref(),
                    dir: Path::new(d),
                })
                .collect();
            let labels = assign(&inputs);
            for (i, (l, _)) in labels.iter().enumerate() {
                prop_assert!(!labels[..i].iter().any(|(m, _)| m == l), "{:?}", labels);
            }
        }
    }

    #[test]
    fn label_equals_dir_and_paths_with_equals_signs() {
        assert_eq!(
            HostArg::parse("lab1=/r/x").unwrap(),
            HostArg {
                label: Some("lab1".into()),
                dir: "/r/x".into()
            }
        );
        assert_eq!(HostArg::parse("/data/a=b").unwrap().label, None);
        assert_eq!(HostArg::parse("./a=b").unwrap().dir, PathBuf::from("./a=b"));
        assert_eq!(HostArg::parse("results").unwrap().label, None);
        assert_eq!(
            HostArg::parse("").unwrap_err(),
            InputError::EmptyDir(String::new())
        );
        assert_eq!(
            HostArg::parse("=x").unwrap_err(),
            InputError::EmptyLabel("=x".into())
        );
        assert_eq!(
            HostArg::parse("lab=").unwrap_err(),
            InputError::EmptyDir("lab=".into())
        );
        let e = HostArg::parse("my host=x").unwrap_err();
        assert!(e.to_string().contains("white space"), "{e}");
        assert!(matches!(
            HostArg::parse("a\u{7}=x").unwrap_err(),
            InputError::BadLabel { .. }
        ));
    }

    #[test]
    fn hosts_are_ordered_by_their_numbers() {
        let mut l = vec![
            "lab10", "lab2", "lab1", "db", "lab02", "lab1 (b)", "lab1 (a)",
        ];
        l.sort_by(|a, b| label_order(a, b));
        assert_eq!(
            l,
            ["db", "lab1", "lab1 (a)", "lab1 (b)", "lab02", "lab2", "lab10"]
        );
    }

    #[test]
    fn a_label_given_twice_is_refused() {
        let args: Vec<HostArg> = ["a=x", "b=y", "z"]
            .iter()
            .map(|s| HostArg::parse(s).unwrap())
            .collect();
        check_unique(&args).unwrap();
        let twice = [
            HostArg::parse("a=x").unwrap(),
            HostArg::parse("a=y").unwrap(),
        ];
        assert_eq!(
            check_unique(&twice).unwrap_err(),
            InputError::DuplicateLabel("a".into())
        );
    }

    #[test]
    fn failed_host_name_and_reason() {
        let f = FailedHostArg::parse("lab3:unreachable: ssh timed out").unwrap();
        assert_eq!(f.name, "lab3");
        assert_eq!(f.reason.as_deref(), Some("unreachable: ssh timed out"));
        let f = FailedHostArg::parse("lab3").unwrap();
        assert_eq!(f.reason, None);
        assert!(f.reason_text().contains("no reason given"));
        assert_eq!(FailedHostArg::parse("lab3:  ").unwrap().reason, None);
        assert!(matches!(
            FailedHostArg::parse(":down"),
            Err(InputError::EmptyName(_))
        ));
        assert!(FailedHostArg::parse("a b:down").is_err());
    }

    fn inp<'a>(given: Option<&'a str>, hostname: Option<&'a str>, dir: &'a str) -> LabelInput<'a> {
        LabelInput {
            given,
            hostname,
            dir: Path::new(dir),
        }
    }

    #[test]
    fn labels_come_from_the_label_then_the_hostname_then_the_directory() {
        let l = assign(&[
            inp(Some("given"), Some("h1"), "/r/a"),
            inp(None, Some("h2"), "/r/b"),
            inp(None, None, "/r/c/"),
            inp(None, None, "."),
        ]);
        assert_eq!(l[0], ("given".into(), LabelSource::Given));
        assert_eq!(l[1], ("h2".into(), LabelSource::Hostname));
        assert_eq!(l[2], ("c".into(), LabelSource::Directory));
        assert_eq!(l[3], (".".into(), LabelSource::Directory));
    }

    #[test]
    fn a_shared_hostname_is_told_apart_by_the_shortest_differing_path_tail() {
        let l = assign(&[
            inp(None, Some("lab1"), "fetched/lab1/run-1"),
            inp(None, Some("lab1"), "fetched/lab1/run-2"),
            inp(None, Some("lab2"), "fetched/lab2/run-1"),
        ]);
        assert_eq!(l[0], ("lab1 (run-1)".into(), LabelSource::Disambiguated));
        assert_eq!(l[1], ("lab1 (run-2)".into(), LabelSource::Disambiguated));
        assert_eq!(l[2], ("lab2".into(), LabelSource::Hostname));
        // Same last component: one more.
        let l = assign(&[
            inp(None, Some("x"), "a/results"),
            inp(None, Some("x"), "b/results"),
        ]);
        assert_eq!(l[0].0, "x (a/results)");
        assert_eq!(l[1].0, "x (b/results)");
        // A hostname equal to a given label: the given one keeps it.
        let l = assign(&[inp(Some("x"), None, "a"), inp(None, Some("x"), "b")]);
        assert_eq!(l[0].0, "x");
        assert_eq!(l[1].0, "x (b)");
        // The same path twice.
        let l = assign(&[inp(None, Some("x"), "a"), inp(None, Some("x"), "a")]);
        assert_eq!(l[0].0, "x (a)");
        assert_eq!(l[1].0, "x (a) #2");
    }
}
