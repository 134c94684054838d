//! `--console-socket`: a unix socket the agent listens on while crun creates a process with a
//! terminal; crun connects and sends the pty master with SCM_RIGHTS.

use crate::sys;
use std::io;
use std::os::unix::io::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest socket path that fits in sockaddr_un (108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on `path` (its directory is created; a stale socket file is removed).
    pub fn bind(path: PathBuf) -> io::Result<ConsoleSocket> {
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("console socket path {} is too long", path.display()),
            ));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The terminal master crun sent. Call after crun returned successfully: its connection and
    /// message are then already queued on the socket, so this waits only as a safety net.
    pub fn receive(&self, timeout: Duration) -> io::Result<OwnedFd> {
        let deadline = Instant::now() + timeout;
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "crun did not connect to the console socket",
                        ));
                    }
                    sys::poll_one(self.listener.as_raw_fd(), libc::POLLIN, Some(left))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        conn.set_nonblocking(false)?;
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        match sys::recv_fd(conn.as_raw_fd(), left)? {
            Some(fd) => Ok(fd),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "crun closed the console socket without sending a terminal",
            )),
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A process's `consoleSize` `{height, width}`: `Ok(None)` if absent, `Err` if malformed.
pub fn console_size(process: &serde_json::Value) -> Result<Option<(u16, u16)>, String> {
    let cs = match process.get("consoleSize") {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let dim = |k: &str| -> Result<u16, String> {
        cs.get(k)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("process.consoleSize.{} must be an integer 0..65535", k))
    };
    Ok(Some((dim("height")?, dim("width")?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn console_sizes() {
        assert_eq!(console_size(&json!({})), Ok(None));
        assert_eq!(console_size(&json!({"consoleSize":{"height":24,"width":80}})), Ok(Some((24, 80))));
        assert!(console_size(&json!({"consoleSize":{"height":24}})).is_err());
        assert!(console_size(&json!({"consoleSize":{"height":-1,"width":80}})).is_err());
        assert!(console_size(&json!({"consoleSize":{"height":70000,"width":80}})).is_err());
        assert!(console_size(&json!({"consoleSize":"24x80"})).is_err());
    }

    #[test]
    fn receives_a_descriptor() {
        let path = std::env::temp_dir().join(format!("kata-agent-cs-{}.sock", std::process::id()));
        let sock = ConsoleSocket::bind(path.clone()).expect("bind");
        // Send one end of a pipe over a connection made before anyone accepts, as crun does,
        // and close the connection before the receiver gets to it.
        let (r, w) = sys::pipe().expect("pipe");
        {
            let c = std::os::unix::net::UnixStream::connect(&path).expect("connect");
            send_fd(c.as_raw_fd(), r.as_raw_fd());
        }
        drop(r);
        let got = sock.receive(Duration::from_secs(2)).expect("receive");
        sys::write_fd(w.as_raw_fd(), b"hi").expect("write");
        let mut buf = [0u8; 2];
        assert_eq!(sys::read_fd(got.as_raw_fd(), &mut buf).expect("read"), 2);
        assert_eq!(&buf, b"hi");
        // Nobody connects: a timeout, not a hang.
        assert!(sock.receive(Duration::from_millis(50)).is_err());
        drop(sock);
        assert!(!path.exists(), "socket file removed");
    }

    fn send_fd(sock: i32, fd: i32) {
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec { iov_base: byte.as_mut_ptr() as *mut libc::c_void, iov_len: 1 };
        let mut control = [0u64; 4];
        // SAFETY (test): plain-data struct, zero is valid; pointers below outlive sendmsg; the
        // CMSG macros stay within `control`, which is large enough for one int.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut i32, fd);
            assert_eq!(libc::sendmsg(sock, &msg, 0), 1);
        }
    }
}
