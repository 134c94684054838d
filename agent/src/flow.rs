//! Per-stream flow-control accounting (docs/protocol.md, "Streams and flow control").
//!
//! `SendWindow`: bytes we may still send on a guest → host stream (starts at the host's HELLO
//! `window`, shrinks with every DATA, grows with every CREDIT the host sends).
//! `RecvWindow`: bytes the host may still send us on a host → guest stream (starts at our HELLO
//! `window`, shrinks with every DATA received, grows when we send CREDIT after the bytes reached
//! the process's pipe). Receiving more than granted is a protocol error.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendWindow {
    credit: u64,
}

impl SendWindow {
    pub fn new(initial: u32) -> SendWindow {
        SendWindow { credit: u64::from(initial) }
    }

    pub fn available(&self) -> u64 {
        self.credit
    }

    /// How many bytes the next DATA frame may carry (0 = wait for CREDIT).
    pub fn next_chunk(&self, max_payload: usize) -> usize {
        let cap = u64::try_from(max_payload).unwrap_or(u64::MAX);
        // Fits in usize: it is at most max_payload.
        self.credit.min(cap) as usize
    }

    /// Accounts for a DATA frame of `n` bytes about to be sent.
    pub fn consume(&mut self, n: usize) -> Result<(), FlowError> {
        let n64 = n as u64;
        if n64 > self.credit {
            return Err(FlowError::OverCredit { wanted: n64, available: self.credit });
        }
        self.credit -= n64;
        Ok(())
    }

    /// A CREDIT frame from the peer. Saturates instead of overflowing.
    pub fn add(&mut self, n: u32) {
        self.credit = self.credit.saturating_add(u64::from(n));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvWindow {
    /// Bytes the peer may still send.
    granted: u64,
}

impl RecvWindow {
    pub fn new(window: u32) -> RecvWindow {
        RecvWindow { granted: u64::from(window) }
    }

    pub fn granted(&self) -> u64 {
        self.granted
    }

    /// A DATA frame arrived. More than granted is a protocol error.
    pub fn on_data(&mut self, n: usize) -> Result<(), FlowError> {
        let n64 = n as u64;
        if n64 > self.granted {
            return Err(FlowError::Overrun { received: n64, granted: self.granted });
        }
        self.granted -= n64;
        Ok(())
    }

    /// We sent CREDIT for `n` bytes.
    pub fn on_credit_sent(&mut self, n: u32) {
        self.granted = self.granted.saturating_add(u64::from(n));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowError {
    /// The peer sent more DATA than it was granted.
    Overrun { received: u64, granted: u64 },
    /// We tried to send more than our credit (a bug on our side).
    OverCredit { wanted: u64, available: u64 },
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::Overrun { received, granted } => {
                write!(f, "peer sent {} bytes with only {} granted", received, granted)
            }
            FlowError::OverCredit { wanted, available } => {
                write!(f, "tried to send {} bytes with only {} credit", wanted, available)
            }
        }
    }
}

impl std::error::Error for FlowError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_never_exceeds_credit() {
        let mut w = SendWindow::new(100_000);
        assert_eq!(w.next_chunk(65536), 65536);
        w.consume(65536).expect("within credit");
        assert_eq!(w.next_chunk(65536), 100_000 - 65536);
        w.consume(100_000 - 65536).expect("within credit");
        assert_eq!(w.next_chunk(65536), 0);
        assert!(w.consume(1).is_err());
        w.add(10);
        assert_eq!(w.next_chunk(65536), 10);
        assert!(w.consume(11).is_err());
        w.consume(10).expect("exact");
        assert_eq!(w.available(), 0);
    }

    #[test]
    fn send_window_saturates() {
        let mut w = SendWindow::new(u32::MAX);
        for _ in 0..10 {
            w.add(u32::MAX);
        }
        assert_eq!(w.available(), 11 * u64::from(u32::MAX));
        assert_eq!(w.next_chunk(4096), 4096);
    }

    #[test]
    fn recv_window_detects_overrun_and_grows_with_credit() {
        let mut r = RecvWindow::new(262144);
        r.on_data(65536).expect("ok");
        r.on_data(65536).expect("ok");
        r.on_data(65536).expect("ok");
        r.on_data(65536).expect("ok");
        assert_eq!(r.granted(), 0);
        assert_eq!(r.on_data(1), Err(FlowError::Overrun { received: 1, granted: 0 }));
        r.on_credit_sent(5);
        assert!(r.on_data(6).is_err());
        r.on_data(5).expect("ok");
    }

    /// Random sequences of DATA and CREDIT against a simple model: the receiver refuses exactly
    /// the DATA that exceeds what it granted; the sender never goes below zero.
    #[test]
    fn property_windows_follow_the_model() {
        let mut r = crate::testrng::Rng::from_env(31);
        let n = crate::testrng::cases(5_000);
        for _ in 0..n {
            let initial = 1 + r.below(300_000) as u32;
            let mut recv = RecvWindow::new(initial);
            let mut send = SendWindow::new(initial);
            let mut model: u64 = u64::from(initial);
            for _ in 0..50 {
                if r.chance(50) {
                    let d = 1 + r.below(70_000) as usize;
                    let ok = recv.on_data(d).is_ok();
                    assert_eq!(ok, d as u64 <= model);
                    if ok { model -= d as u64; }
                    assert_eq!(send.consume(d).is_ok(), ok);
                } else {
                    let c = 1 + r.below(u64::from(u32::MAX)) as u32;
                    recv.on_credit_sent(c);
                    send.add(c);
                    model += u64::from(c);
                }
                assert_eq!(recv.granted(), model);
                assert_eq!(send.available(), model);
                assert!(send.next_chunk(65536) <= 65536);
            }
        }
        eprintln!("flow property cases: {}", n);
    }
}
