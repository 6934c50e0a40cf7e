//! Fuzz the QMP client with arbitrary bytes from "QEMU": the greeting, replies and events are
//! whatever the input says, over an in-memory stream. The client must return values or
//! errors, never panic, and keep its event queue bounded.
#![no_main]

use std::io::{Cursor, Read, Write};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pinlat_runner::qmp::{MgmtPoll, QmpClient, MAX_QUEUED_EVENTS};

/// Reads come from the fuzz input; writes (the client's commands) are discarded.
struct Scripted(Cursor<Vec<u8>>);

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    // A small message cap so the oversize path is reached too.
    let stream = Scripted(Cursor::new(data.to_vec()));
    let Ok(mut qmp) = QmpClient::handshake_with(stream, Duration::from_secs(5), 4096) else {
        return;
    };
    let _ = qmp.version();
    let _ = qmp.query_cpus_fast();
    let _ = qmp.query_iothreads();
    let _ = qmp.query_status();
    let _ = MgmtPoll::new().round(&mut qmp);
    let _ = qmp.poll_events(Duration::from_millis(0));
    let events = qmp.take_events();
    assert!(events.len() <= MAX_QUEUED_EVENTS);
    let _ = qmp.quit();
});
