//! The books of one RT pCPU: every ns of the window goes to exactly one bucket (ran, voluntary
//! idle, stolen, away, unknown), and stolen time is also cut into segments (one culprit's
//! uninterrupted use of the CPU) and intervals (one uninterrupted stretch without the planned
//! thread). [`mod@super::attribute`] decides which bucket a span goes to; this module only adds up.
//!
//! A segment belongs to a nesting level: level 0 is the task on the CPU, level n the n-th
//! nested IRQ frame. An IRQ inside a hog's run ends the IRQ's segment when it returns but not
//! the hog's: the hog's segment goes on, without the IRQ's time in it, so a hog that spun
//! 2 ms through two timer ticks is one 2 ms segment less the ticks, and two IRQ segments.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::class::Class;

/// The measurement window, trace clock ns (`mono` = the runner's `CLOCK_MONOTONIC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First ns of the window.
    pub start_ns: u64,
    /// End of the window (exclusive), ns.
    pub end_ns: u64,
}

impl Window {
    /// Length of the window, ns.
    pub fn len_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// Stolen time of one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassStats {
    /// The class.
    pub class: Class,
    /// Stolen time, ns.
    pub total_ns: u64,
    /// Segments (uninterrupted uses of the CPU by one culprit).
    pub count: u64,
    /// Longest segment, ns.
    pub longest_ns: u64,
    /// The culprits of this class with the most stolen time, most first.
    pub names: Vec<NameStats>,
}

/// Stolen time of one culprit (a thread's comm, an IRQ, a softirq, an exit reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameStats {
    /// Culprit name (`qemu-system-x86`, `irq42 virtio3-tx`, `local_timer`, `RCU`, `HLT`).
    pub name: String,
    /// Stolen time, ns.
    pub total_ns: u64,
    /// Segments.
    pub count: u64,
    /// Longest segment, ns.
    pub longest_ns: u64,
}

/// One culprit's share of a stolen interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Its class.
    pub class: Class,
    /// Its name.
    pub name: String,
    /// Time it held the CPU within the interval, ns.
    pub ns: u64,
}

/// A maximal stretch of the window in which the planned thread wanted the CPU and did not
/// have it (or had it only under an IRQ or in a KVM exit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// Start, trace clock ns.
    pub start_ns: u64,
    /// End, trace clock ns.
    pub end_ns: u64,
    /// Class of the culprit that held the CPU longest in it.
    pub class: Class,
    /// That culprit's name.
    pub name: String,
    /// Every culprit's share, largest first (at most [`MAX_PARTS`]; the rest are dropped).
    pub parts: Vec<Part>,
}

impl Interval {
    /// Length, ns.
    pub fn len_ns(&self) -> u64 {
        self.end_ns - self.start_ns
    }
}

/// Most culprits kept per [`Interval`].
pub const MAX_PARTS: usize = 8;

/// Where a span of time goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use<'a> {
    /// The planned thread ran (in guest mode, under KVM).
    Ran,
    /// The planned thread did not want the CPU.
    Idle,
    /// The planned thread was on another CPU.
    Away,
    /// The events do not tell.
    Unknown,
    /// Stolen by `name` of `class` at nesting `level`.
    Stolen {
        class: Class,
        name: &'a str,
        level: usize,
    },
}

#[derive(Debug)]
struct Seg {
    class: Class,
    name: String,
    own_ns: u64,
}

#[derive(Debug, Default)]
struct Acc {
    total_ns: u64,
    count: u64,
    longest_ns: u64,
}

impl Acc {
    fn add(&mut self, ns: u64) {
        self.total_ns += ns;
        self.count += 1;
        self.longest_ns = self.longest_ns.max(ns);
    }
}

#[derive(Debug, Default)]
struct ClassAcc {
    all: Acc,
    names: HashMap<String, Acc>,
}

#[derive(Debug)]
struct Gap {
    start_ns: u64,
    end_ns: u64,
    parts: Vec<Part>,
}

/// The running totals of one CPU.
#[derive(Debug)]
pub(crate) struct Books {
    pub window: Window,
    pub ran_ns: u64,
    pub idle_ns: u64,
    pub away_ns: u64,
    pub unknown_ns: u64,
    pub stolen_ns: u64,
    segs: Vec<Option<Seg>>,
    classes: BTreeMap<Class, ClassAcc>,
    gap: Option<Gap>,
    pub intervals: Vec<Interval>,
    keep_min_ns: u64,
    pub dropped_intervals: u64,
}

impl Books {
    pub fn new(window: Window, keep_min_ns: u64) -> Self {
        Books {
            window,
            ran_ns: 0,
            idle_ns: 0,
            away_ns: 0,
            unknown_ns: 0,
            stolen_ns: 0,
            segs: Vec::new(),
            classes: BTreeMap::new(),
            gap: None,
            intervals: Vec::new(),
            keep_min_ns,
            dropped_intervals: 0,
        }
    }

    /// Books the span `[a, b)` (clipped to the window) as `what`.
    pub fn credit(&mut self, a: u64, b: u64, what: Use<'_>) {
        let a = a.max(self.window.start_ns);
        let b = b.min(self.window.end_ns);
        if b <= a {
            return;
        }
        let d = b - a;
        match what {
            Use::Stolen { class, name, level } => {
                self.stolen_ns += d;
                self.close_from(level + 1);
                if self.segs.len() <= level {
                    self.segs.resize_with(level + 1, || None);
                }
                match &mut self.segs[level] {
                    Some(s) if s.class == class && s.name == name => s.own_ns += d,
                    slot => {
                        if let Some(old) = slot.take() {
                            Self::book_seg(&mut self.classes, old);
                        }
                        *slot = Some(Seg {
                            class,
                            name: name.to_string(),
                            own_ns: d,
                        });
                    }
                }
                let gap = self.gap.get_or_insert_with(|| Gap {
                    start_ns: a,
                    end_ns: a,
                    parts: Vec::new(),
                });
                gap.end_ns = b;
                match gap
                    .parts
                    .iter_mut()
                    .find(|p| p.class == class && p.name == name)
                {
                    Some(p) => p.ns += d,
                    None => gap.parts.push(Part {
                        class,
                        name: name.to_string(),
                        ns: d,
                    }),
                }
            }
            other => {
                self.close_from(0);
                self.close_gap();
                match other {
                    Use::Ran => self.ran_ns += d,
                    Use::Idle => self.idle_ns += d,
                    Use::Away => self.away_ns += d,
                    _ => self.unknown_ns += d,
                }
            }
        }
    }

    /// Ends the segments at nesting `level` and deeper (their culprit left the CPU).
    pub fn close_from(&mut self, level: usize) {
        for slot in self.segs.iter_mut().skip(level) {
            if let Some(s) = slot.take() {
                Self::book_seg(&mut self.classes, s);
            }
        }
    }

    fn book_seg(classes: &mut BTreeMap<Class, ClassAcc>, s: Seg) {
        let c = classes.entry(s.class).or_default();
        c.all.add(s.own_ns);
        c.names.entry(s.name).or_default().add(s.own_ns);
    }

    fn close_gap(&mut self) {
        let Some(mut g) = self.gap.take() else {
            return;
        };
        if g.end_ns - g.start_ns < self.keep_min_ns {
            self.dropped_intervals += 1;
            return;
        }
        g.parts
            .sort_by(|x, y| y.ns.cmp(&x.ns).then_with(|| x.name.cmp(&y.name)));
        g.parts.truncate(MAX_PARTS);
        let top = &g.parts[0];
        self.intervals.push(Interval {
            start_ns: g.start_ns,
            end_ns: g.end_ns,
            class: top.class,
            name: top.name.clone(),
            parts: g.parts,
        });
    }

    /// Closes everything and returns the per-class statistics, most stolen time first, with
    /// at most `top_names` names each.
    pub fn finish(&mut self, top_names: usize) -> Vec<ClassStats> {
        self.close_from(0);
        self.close_gap();
        let mut out: Vec<ClassStats> = std::mem::take(&mut self.classes)
            .into_iter()
            .map(|(class, acc)| {
                let mut names: Vec<NameStats> = acc
                    .names
                    .into_iter()
                    .map(|(name, a)| NameStats {
                        name,
                        total_ns: a.total_ns,
                        count: a.count,
                        longest_ns: a.longest_ns,
                    })
                    .collect();
                names.sort_by(|x, y| {
                    y.total_ns
                        .cmp(&x.total_ns)
                        .then_with(|| x.name.cmp(&y.name))
                });
                names.truncate(top_names);
                ClassStats {
                    class,
                    total_ns: acc.all.total_ns,
                    count: acc.all.count,
                    longest_ns: acc.all.longest_ns,
                    names,
                }
            })
            .collect();
        out.sort_by(|x, y| {
            y.total_ns
                .cmp(&x.total_ns)
                .then_with(|| x.class.cmp(&y.class))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stolen(class: Class, name: &str, level: usize) -> Use<'_> {
        Use::Stolen { class, name, level }
    }

    /// Books of the window `start_ns..end_ns` keeping intervals of at least `keep_min_ns`.
    fn books(start_ns: u64, end_ns: u64, keep_min_ns: u64) -> Books {
        Books::new(Window { start_ns, end_ns }, keep_min_ns)
    }

    #[test]
    fn an_irq_inside_a_hog_splits_time_not_the_hog_segment() {
        let mut b = books(0, 100, 0);
        b.credit(0, 10, Use::Ran);
        b.credit(10, 20, stolen(Class::Emulator, "hog", 0));
        b.credit(20, 23, stolen(Class::HardIrq, "local_timer", 1));
        b.credit(23, 40, stolen(Class::Emulator, "hog", 0));
        b.credit(40, 100, Use::Ran);
        let c = b.finish(5);
        assert_eq!((b.ran_ns, b.stolen_ns), (70, 30));
        assert_eq!(c[0].class, Class::Emulator);
        assert_eq!((c[0].total_ns, c[0].count, c[0].longest_ns), (27, 1, 27));
        assert_eq!((c[1].total_ns, c[1].count), (3, 1));
        assert_eq!(b.intervals.len(), 1);
        let i = &b.intervals[0];
        assert_eq!((i.start_ns, i.end_ns, i.name.as_str()), (10, 40, "hog"));
        assert_eq!(i.parts.len(), 2);
    }

    #[test]
    fn clipped_to_the_window_and_short_intervals_dropped_but_counted() {
        let mut b = books(100, 200, 5);
        b.credit(0, 150, Use::Unknown);
        b.credit(150, 152, stolen(Class::Other, "x", 0));
        b.credit(152, 160, Use::Idle);
        b.credit(160, 300, stolen(Class::Other, "x", 0));
        b.finish(5);
        assert_eq!(b.unknown_ns + b.idle_ns + b.stolen_ns, 100);
        assert_eq!(b.dropped_intervals, 1);
        assert_eq!(b.intervals.len(), 1);
        assert_eq!((b.intervals[0].start_ns, b.intervals[0].end_ns), (160, 200));
    }
}
