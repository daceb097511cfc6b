//! Every log line of the whole test binary, at TRACE, kept in memory so a test can prove that no
//! secret was ever logged (T39). `TEST_LOG=1` also prints them.

use std::{
    io::Write,
    sync::{Mutex, Once},
};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter, prelude::*};

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INIT: Once = Once::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        Capture
    }
}

pub fn capture() {
    INIT.call_once(|| {
        let print = std::env::var("TEST_LOG").is_ok();
        let registry = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(Capture)
                .with_filter(EnvFilter::new("trace")),
        );
        if print {
            registry
                .with(tracing_subscriber::fmt::layer().with_test_writer())
                .init();
        } else {
            registry.init();
        }
    });
}

/// Everything logged so far by any test in this binary.
pub fn all() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}
