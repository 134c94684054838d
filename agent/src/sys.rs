//! Thin wrappers over the few Linux system calls std does not offer. Every `unsafe` block is
//! here, each with the reason it is sound.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn cstr_opt(s: Option<&str>) -> io::Result<Option<CString>> {
    s.map(|s| {
        CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string has NUL"))
    })
    .transpose()
}

/// A pipe whose both ends are close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` is a valid, writable array of two c_ints, as pipe2 requires.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both fds are fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL only read/modify the status flags of `fd`; no memory is passed.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if on { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    if new != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// Is `fd` an open descriptor?
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless; it fails with EBADF if not open.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// poll(2) on one descriptor. Returns the `revents` (0 on timeout). `None` = wait forever.
pub fn poll_one(fd: RawFd, events: libc::c_short, timeout: Option<Duration>) -> io::Result<libc::c_short> {
    let ms: libc::c_int = match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i32::MAX as u128) as libc::c_int,
    };
    let mut p = libc::pollfd { fd, events, revents: 0 };
    loop {
        // SAFETY: `p` is one valid pollfd and we pass nfds = 1.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(if r == 0 { 0 } else { p.revents });
    }
}

/// read(2) into `buf`.
pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid writable memory of `buf.len()` bytes for the duration of the call.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// write(2) from `buf`.
pub fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid readable memory of `buf.len()` bytes for the duration of the call.
    let r = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let src = CString::new(source).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let tgt = cstring(target)?;
    let fst = CString::new(fstype).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let dat = cstr_opt(data)?;
    let dat_ptr = dat.as_ref().map_or(std::ptr::null(), |d| d.as_ptr() as *const libc::c_void);
    // SAFETY: all pointers are NUL-terminated strings (or NULL for data) that outlive the call.
    cvt(unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fst.as_ptr(), flags, dat_ptr) })?;
    Ok(())
}

pub fn chroot(path: &Path) -> io::Result<()> {
    let p = cstring(path)?;
    // SAFETY: `p` is a NUL-terminated path that outlives the call.
    cvt(unsafe { libc::chroot(p.as_ptr()) })?;
    Ok(())
}

/// Filesystem type magic of the filesystem holding `path` (statfs f_type).
pub fn fs_type(path: &Path) -> io::Result<i64> {
    let p = cstring(path)?;
    // SAFETY: statfs is plain data; all-zero is a valid value for the kernel to overwrite.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `p` is NUL-terminated and `st` is valid writable memory for one statfs.
    cvt(unsafe { libc::statfs(p.as_ptr(), &mut st) })?;
    Ok(st.f_type as i64)
}

/// Loads a kernel module from an open .ko file.
pub fn finit_module(file: &std::fs::File) -> io::Result<()> {
    let params: &CStr = CStr::from_bytes_with_nul(b"\0")
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: finit_module(fd, const char *params, int flags): `file` is an open descriptor for
    // the duration of the call and `params` is a valid NUL-terminated (empty) string.
    let r = unsafe {
        libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0 as libc::c_int)
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Makes this process the reaper of its orphaned descendants (used when not PID 1).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer argument; no memory is passed.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes plain integers.
    cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

/// ioprio_set(IOPRIO_WHO_PROCESS, pid, class << 13 | level): libc has no wrapper.
pub fn ioprio_set(pid: i32, class: u16, level: u16) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    let prio = (libc::c_long::from(class) << IOPRIO_CLASS_SHIFT) | libc::c_long::from(level);
    // SAFETY: ioprio_set(2) takes three integers; no memory is passed.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, libc::c_long::from(pid), prio) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel's `struct sched_attr` (include/uapi/linux/sched/types.h), first version (48 bytes)
/// plus the utilization clamps (56 bytes, SCHED_ATTR_SIZE_VER1), which stay 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

#[repr(C)]
struct RawSchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

/// sched_setattr(pid, attr, 0): libc has no wrapper.
pub fn sched_setattr(pid: i32, attr: &SchedAttr) -> io::Result<()> {
    let raw = RawSchedAttr {
        size: std::mem::size_of::<RawSchedAttr>() as u32,
        sched_policy: attr.policy,
        sched_flags: attr.flags,
        sched_nice: attr.nice,
        sched_priority: attr.priority,
        sched_runtime: attr.runtime,
        sched_deadline: attr.deadline,
        sched_period: attr.period,
        sched_util_min: 0,
        sched_util_max: 0,
    };
    // SAFETY: `raw` is a live, fully initialised struct laid out as the kernel's sched_attr
    // (repr(C)) and its `size` field says how much of it the kernel may read; the kernel only
    // reads it during the call.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, libc::c_long::from(pid), &raw as *const RawSchedAttr, 0 as libc::c_long) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// linux/sched.h (Linux 5.6); libc 0.2.139 does not define it.
const CLONE_NEWTIME: libc::c_int = 0x0000_0080;

/// unshare(CLONE_NEWTIME) in a child between fork and exec, then writes `offsets` (already a
/// C string: no allocation here) to /proc/self/timens_offsets: the child's own children (the
/// container) are created in the new time namespace, with these offsets, which can only be set
/// before any process is in it. Async-signal-safe: unshare, open, write and close only.
pub fn enter_new_time_namespace(offsets: &CStr) -> io::Result<()> {
    // SAFETY: unshare(2) takes an integer flag; no memory is passed.
    cvt(unsafe { libc::unshare(CLONE_NEWTIME) })?;
    let bytes = offsets.to_bytes();
    if bytes.is_empty() {
        return Ok(());
    }
    const PATH: &[u8] = b"/proc/self/timens_offsets\0";
    // SAFETY: PATH is a NUL-terminated byte string that lives for the whole program.
    let fd = cvt(unsafe { libc::open(PATH.as_ptr() as *const libc::c_char, libc::O_WRONLY | libc::O_CLOEXEC) })?;
    // SAFETY: `bytes` is valid for its length during the call; `fd` was just opened.
    let n = unsafe { libc::write(fd, bytes.as_ptr() as *const libc::c_void, bytes.len()) };
    let err = io::Error::last_os_error();
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    if n < 0 {
        return Err(err);
    }
    if n as usize != bytes.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write to timens_offsets"));
    }
    Ok(())
}

/// setns(fd, CLONE_NEWTIME) in a child between fork and exec (a single thread, as the kernel
/// requires): the child and its children join the time namespace `fd` names.
pub fn join_time_namespace(fd: RawFd) -> io::Result<()> {
    // SAFETY: setns(2) takes an fd and a flag; `fd` is kept open by the parent until after spawn.
    cvt(unsafe { libc::setns(fd, CLONE_NEWTIME) })?;
    Ok(())
}

pub fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() }
}

/// reboot(RB_POWER_OFF). Only returns on failure.
pub fn power_off() -> io::Error {
    // SAFETY: reboot(2) takes an integer command; no memory is passed.
    unsafe { libc::reboot(libc::RB_POWER_OFF) };
    io::Error::last_os_error()
}

/// reboot(RB_AUTOBOOT): reset the machine. Only returns on failure.
pub fn restart() -> io::Error {
    // SAFETY: reboot(2) takes an integer command; no memory is passed.
    unsafe { libc::reboot(libc::RB_AUTOBOOT) };
    io::Error::last_os_error()
}

pub fn getpid() -> i32 {
    std::process::id() as i32
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exit code {}", c),
            ExitStatus::Signaled(s) => write!(f, "signal {}", s),
        }
    }
}

/// Blocks until some child has terminated and returns its pid WITHOUT reaping it (WNOWAIT).
/// `Ok(None)` = no children at all (ECHILD).
pub fn wait_any_nowait() -> io::Result<Option<i32>> {
    loop {
        // SAFETY: siginfo_t is plain data; all-zero is a valid value to pass in for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is valid writable memory for one siginfo_t.
        let r = unsafe {
            libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(e),
            }
        }
        // SAFETY: waitid succeeded for a WEXITED child, so the kernel filled in the SIGCHLD
        // fields of `info`, of which si_pid is one.
        let pid = unsafe { info.si_pid() };
        return Ok(Some(pid));
    }
}

/// Reaps `pid` if it has terminated. `Ok(None)`: still running or not our child any more.
pub fn reap(pid: i32) -> io::Result<Option<ExitStatus>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is valid writable memory for one c_int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Ok(None),
                _ => return Err(e),
            }
        }
        if r == 0 {
            return Ok(None);
        }
        return Ok(Some(decode_wait_status(status)));
    }
}

pub fn decode_wait_status(status: libc::c_int) -> ExitStatus {
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signaled(libc::WTERMSIG(status))
    } else {
        ExitStatus::Exited(libc::WEXITSTATUS(status))
    }
}

/// The sockaddr for an AF_VSOCK listener on `port`, any CID.
pub fn vsock_addr(port: u32) -> libc::sockaddr_vm {
    // SAFETY: sockaddr_vm is plain data (integers and padding); all-zero is valid.
    let mut a: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    a.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    a.svm_port = port;
    a.svm_cid = libc::VMADDR_CID_ANY;
    a
}

/// socket + bind + listen on AF_VSOCK `port`.
pub fn vsock_listen(port: u32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes integers only.
    let fd = cvt(unsafe {
        libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: socket succeeded, so `fd` is a fresh descriptor owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let addr = vsock_addr(port);
    // SAFETY: `addr` is a valid sockaddr_vm and we pass its exact size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const libc::sockaddr_vm as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        )
    })?;
    // SAFETY: listen(2) takes integers only.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 1) })?;
    Ok(fd)
}

/// accept4 on a listening socket: returns the connection (close-on-exec) and the peer's CID.
pub fn vsock_accept(listener: RawFd) -> io::Result<(OwnedFd, u32)> {
    loop {
        // SAFETY: zeroed sockaddr_vm is valid; accept4 writes at most `len` bytes into it.
        let mut addr: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t;
        // SAFETY: `addr`/`len` are valid for writes and `len` holds the buffer size.
        let r = unsafe {
            libc::accept4(
                listener,
                &mut addr as *mut libc::sockaddr_vm as *mut libc::sockaddr,
                &mut len,
                libc::SOCK_CLOEXEC,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: accept4 succeeded, so `r` is a fresh descriptor owned by nothing else.
        return Ok((unsafe { OwnedFd::from_raw_fd(r) }, addr.svm_cid));
    }
}

/// shutdown(2) both directions, to wake a thread blocked reading a socket.
pub fn shutdown_socket(fd: RawFd) {
    // SAFETY: shutdown(2) takes integers only; errors (e.g. not connected) are irrelevant here.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// dup(2) with close-on-exec.
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer argument; no memory is passed.
    let r = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: fcntl succeeded, so `r` is a fresh descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// For a child between fork and exec (a `pre_exec` hook): makes `fd` available as `target`
/// without close-on-exec. Only async-signal-safe calls (fcntl, dup2), no allocation.
pub fn inherit_fd_as(fd: RawFd, target: RawFd) -> io::Result<()> {
    if fd == target {
        // dup2 onto itself would keep FD_CLOEXEC: clear the flag instead.
        // SAFETY: F_GETFD/F_SETFD read and set the flags of an integer fd; no memory is passed.
        let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) })?;
    } else {
        // SAFETY: dup2 takes integers; replacing `target` in the child is the intent.
        cvt(unsafe { libc::dup2(fd, target) })?;
    }
    Ok(())
}

/// dup2(2) `fd` onto `target` (used to give PID 1 a console on fds 0-2).
pub fn dup2(fd: RawFd, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 takes integers; replacing `target` is the intent (fds 0-2 of PID 1).
    cvt(unsafe { libc::dup2(fd, target) })?;
    Ok(())
}

/// Receives one descriptor sent with SCM_RIGHTS on a unix stream socket (how crun hands over
/// a terminal's master with `--console-socket`). Waits at most `timeout` for the message.
/// `Ok(None)`: the peer closed without sending a descriptor. Extra descriptors are closed.
pub fn recv_fd(sock: RawFd, timeout: Duration) -> io::Result<Option<OwnedFd>> {
    if poll_one(sock, libc::POLLIN, Some(timeout))? == 0 {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "no descriptor received in time"));
    }
    let mut data = [0u8; 256];
    // Room for up to 8 descriptors; u64 elements keep the buffer aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: msghdr is plain data; all-zero (null pointers, zero lengths) is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` (valid for data.len() bytes) and at `control` (valid for
        // msg_controllen bytes); all of them outlive the call.
        let r = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        break r;
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    // SAFETY: recvmsg filled `msg`; CMSG_FIRSTHDR/CMSG_NXTHDR only walk the control buffer
    // within msg_controllen, which the kernel set to the bytes it wrote.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and points inside `control` (see above).
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN(0) is a constant computation on an integer.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = (hdr.cmsg_len as usize).saturating_sub(header) / std::mem::size_of::<libc::c_int>();
            // SAFETY: for SCM_RIGHTS the data part holds `count` ints, inside `control`.
            let data_ptr = unsafe { libc::CMSG_DATA(cmsg) } as *const libc::c_int;
            for i in 0..count {
                // SAFETY: i < count, within the data part; read_unaligned copes with alignment.
                let fd = unsafe { std::ptr::read_unaligned(data_ptr.add(i)) };
                if fd >= 0 {
                    // SAFETY: the kernel installed this descriptor for us just now; we own it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        crate::warn!("descriptor message was truncated ({} descriptors kept)", fds.len());
    }
    if fds.is_empty() && n == 0 {
        return Ok(None);
    }
    // Keep the first; the rest are dropped (closed).
    Ok(fds.into_iter().next())
}

/// TIOCSWINSZ: sets a terminal's window size (on the master, as runc/crun do).
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer, which is valid.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws as *const libc::winsize) })?;
    Ok(())
}

/// TIOCGWINSZ: (rows, cols) of a terminal.
pub fn get_winsize(fd: RawFd) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which is valid.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) })?;
    Ok((ws.ws_row, ws.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vsock_sockaddr() {
        let a = vsock_addr(1024);
        assert_eq!(a.svm_family, libc::AF_VSOCK as libc::sa_family_t);
        assert_eq!(a.svm_port, 1024);
        assert_eq!(a.svm_cid, u32::MAX);
        assert_eq!(a.svm_reserved1, 0);
        assert_eq!(std::mem::size_of::<libc::sockaddr_vm>(), 16);
    }

    #[test]
    fn wait_status_decoding() {
        assert_eq!(decode_wait_status(3 << 8), ExitStatus::Exited(3));
        assert_eq!(decode_wait_status(9), ExitStatus::Signaled(9));
        assert_eq!(decode_wait_status(0), ExitStatus::Exited(0));
    }

    #[test]
    fn pipes_are_cloexec_and_poll_works() {
        let (r, w) = pipe().expect("pipe");
        // SAFETY (test): F_GETFD reads flags of our own fd.
        let fl = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETFD) };
        assert!(fl & libc::FD_CLOEXEC != 0);
        assert_eq!(poll_one(r.as_raw_fd(), libc::POLLIN, Some(Duration::from_millis(10))).expect("poll"), 0);
        write_fd(w.as_raw_fd(), b"x").expect("write");
        let ev = poll_one(r.as_raw_fd(), libc::POLLIN, Some(Duration::from_millis(10))).expect("poll");
        assert!(ev & libc::POLLIN != 0);
        let mut b = [0u8; 4];
        assert_eq!(read_fd(r.as_raw_fd(), &mut b).expect("read"), 1);
        drop(w);
        assert_eq!(read_fd(r.as_raw_fd(), &mut b).expect("eof"), 0);
    }
}
