//! One-line, levelled logs on stderr (which is /dev/console when the agent is PID 1).
//!
//! Format: `kata-agent[<seconds since start>] <LEVEL> <message>`. Debug lines are printed only
//! when debug logging is on (`kata.debug=1` on the kernel command line or `--debug`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

static DEBUG: AtomicBool = AtomicBool::new(false);
static START: Mutex<Option<Instant>> = Mutex::new(None);

fn start() -> Instant {
    let mut g = START.lock().unwrap_or_else(|e| e.into_inner());
    *g.get_or_insert_with(Instant::now)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// Starts the clock used in log lines; call once early in main.
pub fn init(debug: bool) {
    let _ = start();
    set_debug(debug);
}

pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

pub fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Writes one log line. Newlines inside the message are escaped so a line stays a line.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    if level == Level::Debug && !debug_enabled() {
        return;
    }
    let t = start().elapsed();
    let msg = format!("{}", args).replace('\n', "\\n");
    let line = format!(
        "kata-agent[{}.{:03}] {} {}\n",
        t.as_secs(),
        t.subsec_millis(),
        level.as_str(),
        msg
    );
    // One write call per line so lines from different threads do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($arg)*)) };
}
