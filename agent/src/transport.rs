//! Byte-stream transports under the framing: virtio-serial port, AF_VSOCK listener, and (for
//! tests on the host) a unix socket the agent connects to.

use crate::config::TransportSpec;
use crate::sys;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One host connection.
pub struct Conn {
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
    /// Wakes a reader blocked on this connection and ends it (sockets: shutdown).
    pub closer: Box<dyn Fn() + Send + Sync>,
    /// virtio-serial: the "connection" is the port; a host can go away and a new one start
    /// without us seeing it in between, so a HELLO in the middle starts a new session, and
    /// after a protocol error we discard input until the host disconnects (EOF).
    pub is_port: bool,
    pub describe: String,
}

pub trait Link: Send {
    /// Waits for the next host connection.
    fn accept(&mut self) -> io::Result<Conn>;
}

/// Opens the transport, waiting (with log lines) until its device or socket exists.
pub fn open(spec: &TransportSpec) -> Box<dyn Link> {
    match spec {
        TransportSpec::Serial { port } => Box::new(SerialLink::open_waiting(port)),
        TransportSpec::Vsock { port } => Box::new(VsockLink::open_waiting(*port)),
        TransportSpec::Unix { path } => Box::new(UnixLink { path: path.clone() }),
    }
}

// ---------------------------------------------------------------------------------------------
// virtio-serial

/// Finds the /dev node of the virtio-serial port named `name`.
pub fn find_serial_port(sys_ports: &Path, name: &str) -> io::Result<Option<PathBuf>> {
    let entries = match std::fs::read_dir(sys_ports) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut found: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry?;
        let dev = entry.file_name().to_string_lossy().into_owned();
        if !dev.starts_with("vport") {
            continue;
        }
        if let Ok(n) = std::fs::read_to_string(entry.path().join("name")) {
            if n.trim_end_matches('\n') == name {
                found.push(dev);
            }
        }
    }
    found.sort();
    Ok(found.into_iter().next().map(|d| Path::new("/dev").join(d)))
}

pub struct SerialLink {
    fd: OwnedFd,
    path: PathBuf,
}

impl SerialLink {
    fn open_waiting(name: &str) -> SerialLink {
        let start = Instant::now();
        let mut last_log: Option<Instant> = None;
        loop {
            let problem = match find_serial_port(Path::new("/sys/class/virtio-ports"), name) {
                Ok(Some(path)) => {
                    match OpenOptions::new()
                        .read(true)
                        .write(true)
                        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
                        .open(&path)
                    {
                        Ok(f) => {
                            crate::info!(
                                "virtio-serial port {} is {} (after {} ms)",
                                name,
                                path.display(),
                                start.elapsed().as_millis()
                            );
                            return SerialLink { fd: OwnedFd::from(f), path };
                        }
                        Err(e) => format!("cannot open {}: {}", path.display(), e),
                    }
                }
                Ok(None) => format!("no virtio-serial port named {}", name),
                Err(e) => format!("cannot list /sys/class/virtio-ports: {}", e),
            };
            if last_log.map_or(true, |t| t.elapsed() >= Duration::from_secs(5)) {
                crate::warn!("{}; retrying", problem);
                last_log = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Link for SerialLink {
    fn accept(&mut self) -> io::Result<Conn> {
        // While no host is connected the port reports POLLHUP (with POLLIN: a read would not
        // block, it returns EOF). Wait until the HUP is gone and the host has sent something
        // (its HELLO). The driver has no wake-up for "host connected" that we can rely on with
        // HUP set, so poll it every 25 ms meanwhile.
        loop {
            let ev = sys::poll_one(self.fd.as_raw_fd(), libc::POLLIN, Some(Duration::from_secs(1)))?;
            if ev & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                std::thread::sleep(Duration::from_millis(25));
                continue;
            }
            if ev & libc::POLLIN != 0 {
                break;
            }
        }
        let r = sys::dup(self.fd.as_raw_fd())?;
        let w = sys::dup(self.fd.as_raw_fd())?;
        Ok(Conn {
            reader: Box::new(PortReader { fd: r }),
            writer: Box::new(PortWriter { fd: w }),
            closer: Box::new(|| {}),
            is_port: true,
            describe: format!("virtio-serial {}", self.path.display()),
        })
    }
}

/// Reads a non-blocking virtio-serial port: blocks in poll while the host is connected but
/// quiet; returns EOF (0) when the host disconnects.
struct PortReader {
    fd: OwnedFd,
}

impl Read for PortReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match sys::read_fd(self.fd.as_raw_fd(), buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    sys::poll_one(self.fd.as_raw_fd(), libc::POLLIN, None)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Writes a non-blocking virtio-serial port. The guest driver blocks writers while no host is
/// connected; we fail instead (POLLHUP), so nothing stale reaches the next host before its
/// HELLO.
struct PortWriter {
    fd: OwnedFd,
}

impl Write for PortWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match sys::write_fd(self.fd.as_raw_fd(), buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let ev = sys::poll_one(
                        self.fd.as_raw_fd(),
                        libc::POLLOUT,
                        Some(Duration::from_secs(1)),
                    )?;
                    if ev & libc::POLLOUT == 0 && ev & (libc::POLLHUP | libc::POLLERR) != 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "host disconnected from the virtio-serial port",
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// vsock

pub struct VsockLink {
    listener: OwnedFd,
    port: u32,
}

impl VsockLink {
    fn open_waiting(port: u32) -> VsockLink {
        let mut last_log: Option<Instant> = None;
        loop {
            match sys::vsock_listen(port) {
                Ok(listener) => {
                    crate::info!("listening on vsock port {}", port);
                    return VsockLink { listener, port };
                }
                Err(e) => {
                    if last_log.map_or(true, |t| t.elapsed() >= Duration::from_secs(5)) {
                        crate::warn!("cannot listen on vsock port {}: {}; retrying", port, e);
                        last_log = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

impl Link for VsockLink {
    fn accept(&mut self) -> io::Result<Conn> {
        let (fd, cid) = sys::vsock_accept(self.listener.as_raw_fd())?;
        socket_conn(fd, format!("vsock port {} from cid {}", self.port, cid))
    }
}

fn socket_conn(fd: OwnedFd, describe: String) -> io::Result<Conn> {
    let reader = File::from(sys::dup(fd.as_raw_fd())?);
    let shut = sys::dup(fd.as_raw_fd())?;
    let writer = File::from(fd);
    Ok(Conn {
        reader: Box::new(reader),
        writer: Box::new(writer),
        closer: Box::new(move || sys::shutdown_socket(shut.as_raw_fd())),
        is_port: false,
        describe,
    })
}

// ---------------------------------------------------------------------------------------------
// unix (host-side testing)

/// Connects to a unix socket (retrying until it accepts) and reconnects after a disconnect.
pub struct UnixLink {
    path: PathBuf,
}

impl Link for UnixLink {
    fn accept(&mut self) -> io::Result<Conn> {
        let mut last_log: Option<Instant> = None;
        loop {
            match UnixStream::connect(&self.path) {
                Ok(s) => {
                    return socket_conn(OwnedFd::from(s), format!("unix {}", self.path.display()))
                }
                Err(e) => {
                    if last_log.map_or(true, |t| t.elapsed() >= Duration::from_secs(10)) {
                        crate::debug!("connect {}: {}; retrying", self.path.display(), e);
                        last_log = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_port_by_name() {
        let dir = std::env::temp_dir().join(format!("kata-agent-ports-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (dev, name) in [("vport0p0", ""), ("vport0p1", "agent.0"), ("vport1p1", "other")] {
            std::fs::create_dir_all(dir.join(dev)).expect("mkdir");
            std::fs::write(dir.join(dev).join("name"), format!("{}\n", name)).expect("write");
        }
        std::fs::create_dir_all(dir.join("notaport")).expect("mkdir");
        assert_eq!(
            find_serial_port(&dir, "agent.0").expect("list"),
            Some(PathBuf::from("/dev/vport0p1"))
        );
        assert_eq!(
            find_serial_port(&dir, "other").expect("list"),
            Some(PathBuf::from("/dev/vport1p1"))
        );
        assert_eq!(find_serial_port(&dir, "agent.1").expect("list"), None);
        assert_eq!(find_serial_port(&dir.join("missing"), "agent.0").expect("list"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
