//! Parser for the text tracefs prints in `trace` and `trace_pipe`: one typed [`Event`] per line.
//!
//! The line format is the kernel's `trace_print_context()` (`kernel/trace/trace_output.c`):
//!
//! ```text
//!        CPU 1/TCG-32155   [001] d..2.  1735.187085: sched_switch: prev_comm=CPU 1/TCG ...
//! <comm, right-aligned>-<pid> [(tgid)] [cpu] [irq-info flags] <secs>.<frac>: <event>: <body>
//! ```
//!
//! Recorded on this project's machines (kernel 6.18, `trace_clock` = `mono`) the text carries
//! **microseconds** (`%5lu.%06lu`): the kernel prints every ns clock that way, whatever the
//! clock's own resolution. `trace-cmd report -t` prints nine digits. Both are read; the coarsest
//! resolution seen is reported in [`ParseStats::resolution_ns`] so a matcher can widen its
//! tolerance by it.
//!
//! Comms may hold spaces and dashes (`CPU 1/TCG-32155`, `opt cgu.09-32199`): the header is found
//! by its `[cpu]` field and the pid is what follows the comm's last dash. Event bodies are read
//! by [`super::event`].
//!
//! Input is untrusted in the sense that it may be truncated (a buffer read cut mid-line, a file
//! trimmed by hand) or corrupt: every line is either an event, a lost-events marker
//! (`CPU:1 [LOST 12 EVENTS]`), a comment, or counted as malformed and skipped. Nothing panics
//! (property-tested below).

use std::fmt;

use super::event::parse_body;
pub use super::event::{Ctx, Event, EventKind, Switch, TaskState};

/// Longest partial line [`TraceParser`] keeps while waiting for its newline, bytes; a longer
/// one is dropped and counted as malformed (a tracefs line is under 1 KiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Malformed lines kept verbatim in [`ParseStats::malformed_examples`].
pub const MALFORMED_EXAMPLES: usize = 8;

/// `CPU:N [LOST M EVENTS]`: the ring buffer of `cpu` dropped events here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostEvents {
    /// CPU whose buffer lost events.
    pub cpu: u32,
    /// How many, when the kernel knew (`CPU:N [LOST EVENTS]` otherwise).
    pub count: Option<u64>,
    /// Index in [`Trace::events`] of the first event parsed after the marker: the loss lies
    /// between the previous event of `cpu` and the next one at or after this index.
    pub before_event: usize,
}

/// What one line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// An event.
    Event(Event),
    /// A lost-events marker.
    Lost {
        /// CPU whose buffer lost events.
        cpu: u32,
        /// How many, when known.
        count: Option<u64>,
    },
    /// A `#` header line (also `##### CPU 1 buffer started ####`) or a blank line.
    Comment,
    /// Neither: truncated, corrupt or of an unknown shape.
    Malformed(Malformed),
}

/// Why a line is not an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// No `comm-pid [cpu] flags secs.frac:` header.
    Header,
    /// A timestamp that is not `secs.frac` with 1-9 fraction digits, or overflows u64 ns.
    Timestamp,
    /// No `name: body` after the timestamp.
    EventName,
    /// A known event whose body does not have that event's fields.
    Body,
    /// Longer than [`MAX_LINE_BYTES`].
    TooLong,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::Header => "no comm-pid [cpu] timestamp header",
            Malformed::Timestamp => "bad timestamp",
            Malformed::EventName => "no event name",
            Malformed::Body => "event fields do not parse",
            Malformed::TooLong => "line too long",
        })
    }
}

/// Counts kept while parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Lines seen, a final line without newline included.
    pub lines: u64,
    /// Lines parsed as events.
    pub events: u64,
    /// Comment and blank lines.
    pub comments: u64,
    /// Lines counted as malformed and skipped.
    pub malformed: u64,
    /// Up to [`MALFORMED_EXAMPLES`] of them: (1-based line number, reason, the line cut to 200
    /// bytes).
    pub malformed_examples: Vec<(u64, Malformed, String)>,
    /// Events lost according to the markers whose count was printed.
    pub lost_events: u64,
    /// Lost-events markers, with or without a count.
    pub lost_markers: u64,
    /// Coarsest timestamp resolution seen, ns (1000 for the kernel's own `%06lu` text, 1 for
    /// nine digits); 0 before the first event.
    pub resolution_ns: u64,
}

/// A parsed trace: events in input order, and where events were lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Every event, in the order of the text (tracefs merges CPUs in time order).
    pub events: Vec<Event>,
    /// Every lost-events marker.
    pub lost: Vec<LostEvents>,
    /// Counts.
    pub stats: ParseStats,
}

/// Parses a whole `trace` / `trace_pipe` text.
pub fn parse_trace(text: &str) -> Trace {
    let mut p = TraceParser::new();
    p.feed(text.as_bytes());
    p.finish()
}

/// Incremental parser for text read in chunks (a `trace_pipe` reader): lines may be split
/// across [`TraceParser::feed`] calls.
#[derive(Debug, Default)]
pub struct TraceParser {
    partial: Vec<u8>,
    overlong: bool,
    trace: Trace,
    /// Only events with `lo <= ts_ns < hi` are kept (all are counted).
    keep: Option<(u64, u64)>,
}

impl TraceParser {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser that keeps only the events with `lo_ns <= ts_ns < hi_ns` (every line is still
    /// counted in [`ParseStats`]): a long recording is read for one window without holding
    /// the rest in memory. Lost-events markers are all kept.
    pub fn keeping(lo_ns: u64, hi_ns: u64) -> Self {
        TraceParser {
            keep: Some((lo_ns, hi_ns)),
            ..Self::default()
        }
    }

    /// Parses every complete line in `bytes`; keeps an incomplete last line for later.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            let (head, rest) = bytes.split_at(nl);
            bytes = &rest[1..];
            if self.overlong || self.partial.len() + head.len() > MAX_LINE_BYTES {
                self.overlong = false;
                self.partial.clear();
                self.count_line(Line::Malformed(Malformed::TooLong), b"");
                continue;
            }
            if self.partial.is_empty() {
                self.take_line(head);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.take_line(&line);
            }
        }
        if self.partial.len() + bytes.len() > MAX_LINE_BYTES {
            self.overlong = true;
            self.partial.clear();
        } else if !self.overlong {
            self.partial.extend_from_slice(bytes);
        }
    }

    /// Parses the last line (a truncated one is counted as malformed) and returns the trace.
    pub fn finish(mut self) -> Trace {
        if self.overlong {
            self.count_line(Line::Malformed(Malformed::TooLong), b"");
        } else if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.take_line(&line);
        }
        self.trace
    }

    /// The trace parsed so far (complete lines only).
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    fn take_line(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let (line, resolution_ns) = parse_line_res(text);
        let st = &mut self.trace.stats;
        st.resolution_ns = st.resolution_ns.max(resolution_ns);
        self.count_line(line, text.as_bytes());
    }

    fn count_line(&mut self, line: Line, raw: &[u8]) {
        let st = &mut self.trace.stats;
        st.lines += 1;
        match line {
            Line::Event(e) => {
                st.events += 1;
                if self
                    .keep
                    .map_or(true, |(lo, hi)| (lo..hi).contains(&e.ts_ns))
                {
                    self.trace.events.push(e);
                }
            }
            Line::Lost { cpu, count } => {
                st.lost_markers += 1;
                st.lost_events = st.lost_events.saturating_add(count.unwrap_or(0));
                self.trace.lost.push(LostEvents {
                    cpu,
                    count,
                    before_event: self.trace.events.len(),
                });
            }
            Line::Comment => st.comments += 1,
            Line::Malformed(why) => {
                st.malformed += 1;
                if st.malformed_examples.len() < MALFORMED_EXAMPLES {
                    let cut = &raw[..raw.len().min(200)];
                    let s = String::from_utf8_lossy(cut).into_owned();
                    st.malformed_examples.push((st.lines, why, s));
                }
            }
        }
    }
}

/// Parses one line (without its newline).
pub fn parse_line(line: &str) -> Line {
    parse_line_res(line).0
}

/// The line, and the resolution of its timestamp in ns (0 when it is not an event).
fn parse_line_res(line: &str) -> (Line, u64) {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return (Line::Comment, 0);
    }
    if let Some(lost) = parse_lost(trimmed) {
        return (lost, 0);
    }
    match parse_event(line) {
        Ok((e, res)) => (Line::Event(e), res),
        Err(m) => (Line::Malformed(m), 0),
    }
}

fn parse_lost(s: &str) -> Option<Line> {
    let rest = s.strip_prefix("CPU:")?;
    let (cpu, rest) = rest.split_once(' ')?;
    let cpu = cpu.parse().ok()?;
    let inner = rest.trim().strip_prefix("[LOST ")?.strip_suffix(" EVENTS]");
    match inner {
        Some(n) => Some(Line::Lost {
            cpu,
            count: Some(n.trim().parse().ok()?),
        }),
        None if rest.trim() == "[LOST EVENTS]" => Some(Line::Lost { cpu, count: None }),
        None => None,
    }
}

/// The fixed part of an event line.
struct Header<'a> {
    comm: &'a str,
    pid: u32,
    cpu: u32,
    ctx: Option<Ctx>,
    ts_ns: u64,
    resolution_ns: u64,
    rest: &'a str,
}

fn parse_event(line: &str) -> Result<(Event, u64), Malformed> {
    let h = header(line)?;
    let (name, body) = match h.rest.split_once(": ") {
        Some((n, b)) => (n, b),
        None => (h.rest.strip_suffix(':').ok_or(Malformed::EventName)?, ""),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Malformed::EventName);
    }
    let kind = parse_body(name, body).ok_or(Malformed::Body)?;
    let event = Event {
        ts_ns: h.ts_ns,
        cpu: h.cpu,
        pid: h.pid,
        comm: h.comm.to_string(),
        ctx: h.ctx,
        kind,
    };
    Ok((event, h.resolution_ns))
}

/// Finds `[cpu]` preceded by `comm-pid` and followed by optional flags and `secs.frac:`.
fn header(line: &str) -> Result<Header<'_>, Malformed> {
    let mut last_err = Malformed::Header;
    let bytes = line.as_bytes();
    for (i, _) in line.match_indices(" [") {
        let open = i + 1;
        let Some(close_rel) = line[open..].find(']') else {
            break;
        };
        let close = open + close_rel;
        let cpu_txt = &line[open + 1..close];
        if cpu_txt.is_empty() || cpu_txt.len() > 5 || !cpu_txt.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if bytes.get(close + 1) != Some(&b' ') {
            continue;
        }
        let Some((comm, pid)) = comm_pid(&line[..i]) else {
            continue;
        };
        let Ok(cpu) = cpu_txt.parse::<u32>() else {
            continue;
        };
        let after = line[close + 1..].trim_start();
        let (tok, rest) = after.split_once(' ').unwrap_or((after, ""));
        let (ctx, ts_tok, rest) = if tok.ends_with(':') {
            (None, tok, rest)
        } else {
            let Some(ctx) = flags(tok) else {
                continue;
            };
            let rest = rest.trim_start();
            let (ts, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            (Some(ctx), ts, rest)
        };
        let Some(ts_txt) = ts_tok.strip_suffix(':') else {
            last_err = Malformed::Timestamp;
            continue;
        };
        let Some((ts_ns, resolution_ns)) = timestamp(ts_txt) else {
            last_err = Malformed::Timestamp;
            continue;
        };
        let rest = rest.trim_start();
        if rest.is_empty() {
            last_err = Malformed::EventName;
            continue;
        }
        return Ok(Header {
            comm,
            pid,
            cpu,
            ctx,
            ts_ns,
            resolution_ns,
            rest,
        });
    }
    Err(last_err)
}

/// `  CPU 1/TCG-32155` or `kworker/1:1-41 (     41)` → ("CPU 1/TCG", 32155).
fn comm_pid(s: &str) -> Option<(&str, u32)> {
    let mut s = s.trim_end();
    if s.ends_with(')') {
        // record-tgid: `comm-pid (  tgid)` or `(-------)`.
        let open = s.rfind('(')?;
        s = s[..open].trim_end();
    }
    let (comm, pid) = s.rsplit_once('-')?;
    if pid.is_empty() || pid.len() > 10 || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let comm = comm.trim_start();
    if comm.is_empty() {
        return None;
    }
    Some((comm, pid.parse().ok()?))
}

/// The irq-info column: `d..2.` (kernel 5.18+) or `d..2` (older).
fn flags(tok: &str) -> Option<Ctx> {
    let b = tok.as_bytes();
    if !(4..=6).contains(&b.len()) || !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.') {
        return None;
    }
    let irq = b[2];
    Some(Ctx {
        irqs_off: matches!(b[0], b'd' | b'D'),
        need_resched: matches!(b[1], b'N' | b'n' | b'p' | b'L' | b'l' | b'B' | b'b'),
        hardirq: matches!(irq, b'h' | b'H' | b'Z'),
        softirq: matches!(irq, b's' | b'H'),
        nmi: matches!(irq, b'z' | b'Z'),
    })
}

/// `1735.187085` → (1_735_187_085_000 ns, 1000 ns).
fn timestamp(s: &str) -> Option<(u64, u64)> {
    let (secs, frac) = s.split_once('.')?;
    if secs.is_empty()
        || secs.len() > 11
        || frac.is_empty()
        || frac.len() > 9
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale = 10u64.pow(9 - frac.len() as u32);
    let secs: u64 = secs.parse().ok()?;
    let frac: u64 = frac.parse().ok()?;
    let ns = secs.checked_mul(1_000_000_000)?.checked_add(frac * scale)?;
    Some((ns, scale))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
