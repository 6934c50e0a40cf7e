//! Console lines as the scanner sees them: the tail of the console only, each line without
//! its line end, escape sequences, control bytes, timestamp, caller id or log level; and the
//! bounds on what is kept of them.

/// How much of a console is scanned, counted back from its end, in bytes (8 MiB). A panic is
/// the guest's last word, so it is always in the tail; warnings printed earlier than that in a
/// larger console are not seen.
pub const SCAN_TAIL_BYTES: usize = 8 << 20;
/// The longest evidence line kept, in characters; longer lines end with `…`.
pub const EVIDENCE_LINE_CHARS: usize = 200;
/// The most evidence lines kept for one cause or one warning.
pub const EVIDENCE_LINES: usize = 12;

/// One console line, cleaned: no line end, escape sequences, control bytes or timestamp.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    /// The printk timestamp, in microseconds since boot, when the line had one.
    pub at_us: Option<u64>,
    /// The text after the timestamp; tabs are spaces.
    pub text: String,
}

/// The lines of the last [`SCAN_TAIL_BYTES`] of `console`, cleaned. A line cut by the window's
/// start is skipped.
pub(super) fn lines(console: &[u8]) -> impl Iterator<Item = Line> + '_ {
    let mut tail = &console[console.len().saturating_sub(SCAN_TAIL_BYTES)..];
    if tail.len() < console.len() {
        let cut = tail
            .iter()
            .position(|&b| b == b'\n')
            .map_or(tail.len(), |i| i + 1);
        tail = &tail[cut..];
    }
    tail.split(|&b| b == b'\n').map(clean_line)
}

/// Cleans one raw line: lossy UTF-8, ANSI escape sequences and control bytes dropped, tabs
/// made spaces, the `[ secs.micros]` timestamp (and a `[ T1]` caller id after it) and a
/// `<N>` log level taken off.
pub(super) fn clean_line(raw: &[u8]) -> Line {
    let lossy = String::from_utf8_lossy(raw);
    let mut text = String::with_capacity(lossy.len());
    let mut chars = lossy.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters… final byte in @..~; any other escape: one more char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => text.push(' '),
            c if c.is_control() => {}
            c => text.push(c),
        }
    }
    let mut rest = text.trim_start();
    if let Some(after) = strip_level(rest) {
        rest = after;
    }
    let mut at_us = None;
    if let Some((us, after)) = strip_timestamp(rest) {
        at_us = Some(us);
        rest = after;
        if let Some(after) = strip_caller_id(rest) {
            rest = after;
        }
    }
    if let Some(after) = strip_level(rest) {
        rest = after;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    Line {
        at_us,
        text: rest.trim_end().to_owned(),
    }
}

/// `[   12.345678]` → (12 345 678 µs, the rest).
fn strip_timestamp(s: &str) -> Option<(u64, &str)> {
    let inner_end = s.strip_prefix('[')?.find(']')?;
    let inner = s[1..1 + inner_end].trim();
    let (secs, frac) = inner.split_once('.')?;
    if secs.is_empty() || frac.is_empty() || frac.len() > 9 {
        return None;
    }
    if !secs.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let micros = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0u64, |m, b| m * 10 + u64::from(b - b'0'));
    Some((
        secs.checked_mul(1_000_000)?.checked_add(micros)?,
        &s[inner_end + 2..],
    ))
}

/// `[    T1]` or `[ C0]` (CONFIG_PRINTK_CALLER) → the rest.
fn strip_caller_id(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let end = s.strip_prefix('[')?.find(']')?;
    let inner = s[1..1 + end].trim();
    let digits = inner
        .strip_prefix('T')
        .or_else(|| inner.strip_prefix('C'))?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| &s[end + 2..])
}

/// `<4>` (a syslog level, as `dmesg -r` prints) → the rest.
fn strip_level(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    (b.len() >= 3 && b[0] == b'<' && b[1].is_ascii_digit() && b[2] == b'>').then(|| &s[3..])
}

/// `s` cut to [`EVIDENCE_LINE_CHARS`] characters.
pub(super) fn bounded(s: &str) -> String {
    match s.char_indices().nth(EVIDENCE_LINE_CHARS) {
        None => s.to_owned(),
        Some((end, _)) => {
            let cut = s[..end].char_indices().last().map_or(0, |(i, _)| i);
            format!("{}…", &s[..cut])
        }
    }
}

/// Adds `line` to `evidence` unless it is there already or the list is full.
pub(super) fn push_evidence(evidence: &mut Vec<String>, line: &str) {
    let line = bounded(line);
    if evidence.len() < EVIDENCE_LINES && !line.is_empty() && !evidence.contains(&line) {
        evidence.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_takes_off_timestamps_escapes_and_levels() {
        let l = clean_line(b"\x1b[1;31m[   12.345678] \x1b[0mKernel panic\r");
        assert_eq!(l.at_us, Some(12_345_678));
        assert_eq!(l.text, "Kernel panic");
        let l = clean_line(b"<0>[    2.5][    T1] rcu:\tINFO");
        assert_eq!((l.at_us, l.text.as_str()), (Some(2_500_000), "rcu: INFO"));
        let l = clean_line(b"<4>BUG: x\x07\xff");
        assert_eq!(l.text, "BUG: x\u{fffd}");
        let l = clean_line(b"[abc] not a stamp");
        assert_eq!((l.at_us, l.text.as_str()), (None, "[abc] not a stamp"));
    }

    #[test]
    fn a_window_cut_skips_the_partial_line() {
        let mut c = vec![b'x'; SCAN_TAIL_BYTES];
        c.extend_from_slice(b"\nlast line\n");
        let got: Vec<_> = lines(&c).map(|l| l.text).collect();
        assert_eq!(got, vec!["last line".to_owned(), String::new()]);
    }

    #[test]
    fn bounded_cuts_on_a_char_boundary() {
        let long = "é".repeat(EVIDENCE_LINE_CHARS + 5);
        let b = bounded(&long);
        assert_eq!(b.chars().count(), EVIDENCE_LINE_CHARS);
        assert!(b.ends_with('…'));
        assert_eq!(bounded("short"), "short");
    }
}
