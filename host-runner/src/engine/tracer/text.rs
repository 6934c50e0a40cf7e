//! The kept trace text: the reader thread that writes it, and reading it back (the whole
//! of it for the parser, the spans of a capture).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use pinlat::trace::parse::{parse_line, Line, TraceParser};

use super::{ReaderOut, DRAIN_PERIOD};

/// The reader thread: `trace_pipe` → `out` until told to stop and drained, at most `max_bytes`
/// kept (the rest counted as dropped).
pub(super) fn read_pipe(
    mut pipe: File,
    mut out: File,
    stop: &AtomicBool,
    max_bytes: u64,
) -> ReaderOut {
    let mut buf = vec![0u8; 1 << 16];
    let (mut bytes, mut dropped, mut error) = (0u64, 0u64, None);
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        match pipe.read(&mut buf) {
            Ok(0) => {
                if stopping {
                    break;
                }
                std::thread::sleep(DRAIN_PERIOD);
            }
            Ok(n) => {
                if bytes + n as u64 > max_bytes {
                    dropped += n as u64;
                } else if let Err(e) = out.write_all(&buf[..n]) {
                    error = Some(format!("writing the temporary trace file: {e}"));
                    break;
                } else {
                    bytes += n as u64;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stopping {
                    break;
                }
                std::thread::sleep(DRAIN_PERIOD);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    drop(pipe);
    ReaderOut {
        file: out,
        bytes,
        dropped,
        error,
    }
}

/// Feeds the whole kept text to `parser`.
pub(super) fn feed(file: &mut File, parser: &mut TraceParser) -> io::Result<()> {
    file.rewind()?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        parser.feed(&buf[..n]);
    }
}

/// Appends to `out` the lines of `file` inside any of `spans` (and every lost-events line),
/// with `markers` as comment lines at their times; stops at `bound` bytes. Whether it was cut.
pub(super) fn select(
    file: &mut File,
    spans: &[(u64, u64)],
    markers: &[(u64, String)],
    bound: u64,
    out: &mut Vec<u8>,
) -> bool {
    if file.rewind().is_err() {
        return false;
    }
    let mut markers: Vec<&(u64, String)> = markers.iter().collect();
    markers.sort_by_key(|m| m.0);
    let mut next = 0;
    let inside = |t: u64| spans.iter().any(|&(a, b)| (a..b).contains(&t));
    let mut line = Vec::new();
    let mut r = BufReader::new(file);
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let keep = match parse_line(text.trim_end_matches('\n')) {
            Line::Event(e) => {
                while let Some((t, m)) = markers.get(next) {
                    if *t > e.ts_ns {
                        break;
                    }
                    out.extend_from_slice(
                        format!("# pinlat-marker {}: {m}\n", secs(*t)).as_bytes(),
                    );
                    next += 1;
                }
                inside(e.ts_ns)
            }
            Line::Lost { .. } => true,
            Line::Comment => out.is_empty(),
            Line::Malformed(_) => false,
        };
        if keep {
            if out.len() as u64 + line.len() as u64 > bound {
                return true;
            }
            out.extend_from_slice(&line);
        }
    }
    for (t, m) in &markers[next..] {
        out.extend_from_slice(format!("# pinlat-marker {}: {m}\n", secs(*t)).as_bytes());
    }
    false
}

/// `secs.micros` as tracefs prints its `mono` clock.
pub(super) fn secs(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, ns % 1_000_000_000 / 1_000)
}

/// Bytes of the files directly in `dir` (0 when it does not exist).
pub(super) fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}
