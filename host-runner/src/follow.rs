//! Reading what QEMU writes to files while it runs: the agent channel on ttyS1, the console,
//! QEMU's stderr.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

fn read_tail(path: &Path, max_bytes: u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max_bytes)));
    let mut buf = Vec::new();
    let _ = f.take(max_bytes).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads the last `max_bytes` of a log (e.g. the console log to print on failure).
pub fn log_tail(path: &Path, max_bytes: u64) -> String {
    read_tail(path, max_bytes)
}

/// Follows a file that QEMU appends to (the agent channel), returning only new bytes.
/// Before the file exists, reads return nothing; if it shrinks (QEMU truncated it on start),
/// reading restarts from the beginning.
#[derive(Debug)]
pub struct FileFollower {
    path: PathBuf,
    file: Option<fs::File>,
    offset: u64,
}

impl FileFollower {
    /// Follows `path` from its start.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileFollower {
            path: path.into(),
            file: None,
            offset: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Appends up to `max_bytes` new bytes to `out`; returns how many (0: nothing new yet).
    pub fn read_new(&mut self, out: &mut Vec<u8>, max_bytes: usize) -> io::Result<usize> {
        if self.file.is_none() {
            match fs::File::open(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            }
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(0);
        };
        let len = f.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
        }
        if len == self.offset {
            return Ok(0);
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let want = ((len - self.offset) as usize).min(max_bytes);
        let before = out.len();
        f.take(want as u64).read_to_end(out)?;
        let n = out.len() - before;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_sees_appends_and_truncation() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chan");
        let mut f = FileFollower::new(&p);
        let mut out = Vec::new();
        assert_eq!(f.read_new(&mut out, 100).unwrap(), 0);
        let mut w = fs::File::create(&p).unwrap();
        w.write_all(b"hello ").unwrap();
        assert_eq!(f.read_new(&mut out, 3).unwrap(), 3);
        assert_eq!(f.read_new(&mut out, 100).unwrap(), 3);
        w.write_all(b"world").unwrap();
        assert_eq!(f.read_new(&mut out, 100).unwrap(), 5);
        assert_eq!(out, b"hello world");
        assert_eq!(f.read_new(&mut out, 100).unwrap(), 0);
        fs::write(&p, b"new").unwrap();
        out.clear();
        assert_eq!(f.read_new(&mut out, 100).unwrap(), 3);
        assert_eq!(out, b"new");
    }
}
