//! Invocations of crun. Every child goes through the reaper; every wait has a deadline.

use crate::reaper::Reaper;
use crate::sys::{self, ExitStatus};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::io::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `crun create` may need to set up mounts over virtio-fs on a slow (TCG) guest.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// start, kill, delete.
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest crun error message passed on to the host.
const MAX_MESSAGE: usize = 4096;
/// The descriptor `crun exec` inherits the exec-sync pipe on (see `Crun::exec`).
const EXEC_SYNC_FD: i32 = 3;
/// How long `exec` waits after crun returned for the process to have exec'd.
const EXEC_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a crun invocation failed; `message` is crun's own words where it gave any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrunError {
    pub message: String,
}

impl std::fmt::Display for CrunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The read end of `exec`'s sync pipe: EOF once the new process has exec'd (or ended).
pub struct ExecStarted {
    pipe: OwnedFd,
    pid: i32,
}

impl ExecStarted {
    /// Waits (at most EXEC_START_TIMEOUT) until the process runs the requested program or has
    /// ended. Logs and returns if it takes longer.
    pub fn wait(self) {
        match wait_eof(&self.pipe, Instant::now() + EXEC_START_TIMEOUT) {
            Ok(true) => {}
            Ok(false) => crate::warn!(
                "exec: pid {} has not exec'd after {}s; answering anyway",
                self.pid,
                EXEC_START_TIMEOUT.as_secs()
            ),
            Err(e) => crate::warn!("exec: waiting for pid {} to exec: {}", self.pid, e),
        }
    }
}

pub struct Crun {
    bin: PathBuf,
    reaper: Arc<Reaper>,
}

/// The stdio a container's init gets (it inherits crun create's).
pub struct ProcessStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Crun {
    pub fn new(bin: PathBuf, reaper: Arc<Reaper>) -> Crun {
        Crun { bin, reaper }
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// `crun --log=file:<bundle>/crun.log create --bundle <bundle> --pid-file <bundle>/pid
    /// [--console-socket <sock>] <id>` with `stdio` as crun's (and so the container init's)
    /// stdio. Returns the init's pid. `time_offsets`: crun runs in a new time namespace with
    /// these offsets, so the container is created in it (src/timens.rs says why).
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        console_socket: Option<&Path>,
        stdio: ProcessStdio,
        time_offsets: Option<CString>,
    ) -> Result<i32, CrunError> {
        let log = bundle.join("crun.log");
        let pid_file = bundle.join("pid");
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("--log=file:{}", log.display()))
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(sock) = console_socket {
            cmd.arg("--console-socket").arg(sock);
        }
        cmd.arg(id);
        if let Some(offsets) = time_offsets {
            // SAFETY: the hook runs in the child between fork and exec and only makes system
            // calls (unshare, open, write, close: async-signal-safe, no allocation); `offsets`
            // was made before the fork and moves into the closure.
            unsafe {
                cmd.pre_exec(move || sys::enter_new_time_namespace(&offsets));
            }
        }
        self.run_logged(cmd, "create", &log, &pid_file, stdio, None)
    }

    /// `crun --log=file:<dir>/crun.log exec --process <dir>/process.json --detach
    /// --pid-file <dir>/pid [--console-socket <sock>] <id>`. crun 1.8.1 returns only once the
    /// new process is about to execve (or has failed: then it exits non-zero and the process's
    /// own error is in the log), so failures are synchronous. The process inherits `stdio`.
    /// Returns its pid; it is re-parented to the agent when crun's helper exits.
    ///
    /// crun returns *just before* the process's execve. To answer only once the process runs
    /// the requested program (so a `ps` or `signal` right after sees it, not crun), crun also
    /// gets the write end of a pipe as fd 3: crun marks every fd from 3 up close-on-exec in the
    /// new process, so the read end sees EOF once crun, its helper and the process (at its
    /// execve, or its exit) have all let go of it, like runc's exec fifo.
    /// `time_ns`: the container's time namespace, when it has one: crun exec runs in it (crun
    /// does not know it is there, src/timens.rs).
    pub fn exec(
        &self,
        id: &str,
        dir: &Path,
        console_socket: Option<&Path>,
        stdio: ProcessStdio,
        time_ns: Option<File>,
    ) -> Result<(i32, ExecStarted), CrunError> {
        let log = dir.join("crun.log");
        let pid_file = dir.join("pid");
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("--log=file:{}", log.display()))
            .arg("exec")
            .arg("--process")
            .arg(dir.join("process.json"))
            .arg("--detach")
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(sock) = console_socket {
            cmd.arg("--console-socket").arg(sock);
        }
        cmd.arg(id);
        let (started_r, started_w) = sys::pipe().map_err(|e| CrunError {
            message: format!("cannot create the exec pipe: {}", e),
        })?;
        let w = started_w.as_raw_fd();
        // SAFETY: the hook runs in the child between fork and exec and only calls
        // sys::inherit_fd_as (fcntl/dup2: async-signal-safe, no allocation). `w` stays open in
        // the parent until after spawn (started_w is dropped below), so it is valid in the child.
        unsafe {
            cmd.pre_exec(move || sys::inherit_fd_as(w, EXEC_SYNC_FD));
        }
        if let Some(ns) = &time_ns {
            let fd = ns.as_raw_fd();
            // SAFETY: the hook runs in the child (one thread) between fork and exec and only
            // calls setns(2); `ns` stays open in the parent until after spawn (dropped below).
            unsafe {
                cmd.pre_exec(move || sys::join_time_namespace(fd));
            }
        }
        let pid = self.run_logged(cmd, "exec", &log, &pid_file, stdio, Some(started_w))?;
        drop(time_ns);
        Ok((pid, ExecStarted { pipe: started_r, pid }))
    }

    /// Runs a crun command that logs to `log` and writes `pid_file`; waits at most
    /// CREATE_TIMEOUT; returns the pid from the file.
    fn run_logged(
        &self,
        mut cmd: Command,
        verb: &str,
        log: &Path,
        pid_file: &Path,
        stdio: ProcessStdio,
        child_only: Option<OwnedFd>,
    ) -> Result<i32, CrunError> {
        cmd.stdin(stdio.stdin).stdout(stdio.stdout).stderr(stdio.stderr);
        crate::debug!("running {:?}", cmd);
        let spawned = self.reaper.spawn(&mut cmd);
        // The Command holds our copies of the process-side pipe ends: close them now, so the
        // process's exit (not our own fds) decides when the pipes reach end-of-file. Likewise
        // any descriptor only the child was to inherit.
        drop(cmd);
        drop(child_only);
        let (_child, waiter) = spawned.map_err(|e| CrunError {
            message: format!("cannot run {}: {}", self.bin.display(), e),
        })?;
        let status = match waiter.wait_timeout(CREATE_TIMEOUT) {
            Some(s) => s,
            None => {
                let _ = sys::kill(waiter.pid, libc::SIGKILL);
                let _ = waiter.wait_timeout(Duration::from_secs(5));
                return Err(CrunError {
                    message: format!("crun {} timed out after {}s", verb, CREATE_TIMEOUT.as_secs()),
                });
            }
        };
        if !status.success() {
            let logged = std::fs::read_to_string(log).unwrap_or_default();
            return Err(CrunError { message: failure_message(verb, status, &logged) });
        }
        let text = std::fs::read_to_string(pid_file).map_err(|e| CrunError {
            message: format!("crun {} succeeded but {} is unreadable: {}", verb, pid_file.display(), e),
        })?;
        match text.trim().parse::<i32>() {
            Ok(pid) if pid > 0 => Ok(pid),
            _ => Err(CrunError {
                message: format!("crun {} wrote an invalid pid file: {:?}", verb, text.trim()),
            }),
        }
    }

    /// `crun update --resources <file> <id>`.
    pub fn update(&self, id: &str, resources_file: &Path) -> Result<(), CrunError> {
        let file = resources_file.to_string_lossy();
        self.run_simple(&["update", "--resources", &file, id])
    }

    pub fn start(&self, id: &str) -> Result<(), CrunError> {
        self.run_simple(&["start", id])
    }

    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), CrunError> {
        let sig = signal.to_string();
        if all {
            self.run_simple(&["kill", "--all", id, &sig])
        } else {
            self.run_simple(&["kill", id, &sig])
        }
    }

    pub fn delete_force(&self, id: &str) -> Result<(), CrunError> {
        self.run_simple(&["delete", "-f", id])
    }

    /// Runs crun with /dev/null stdin/stdout and a captured stderr.
    fn run_simple(&self, args: &[&str]) -> Result<(), CrunError> {
        let deadline = Instant::now() + SHORT_TIMEOUT;
        let verb = args.first().copied().unwrap_or("");
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        crate::debug!("running {:?}", cmd);
        let (mut child, waiter) = self.reaper.spawn(&mut cmd).map_err(|e| CrunError {
            message: format!("cannot run {}: {}", self.bin.display(), e),
        })?;
        drop(cmd);
        let stderr = match child.stderr.take() {
            Some(s) => read_until(&s, deadline).unwrap_or_default(),
            None => Vec::new(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let status = match waiter.wait_timeout(left) {
            Some(s) => s,
            None => {
                let _ = sys::kill(waiter.pid, libc::SIGKILL);
                let _ = waiter.wait_timeout(Duration::from_secs(5));
                return Err(CrunError {
                    message: format!("crun {} timed out after {}s", verb, SHORT_TIMEOUT.as_secs()),
                });
            }
        };
        if status.success() {
            Ok(())
        } else {
            Err(CrunError {
                message: failure_message(verb, status, &String::from_utf8_lossy(&stderr)),
            })
        }
    }
}

/// Waits until every writer of the pipe `r` has closed it (true) or the deadline (false);
/// anything written is ignored.
fn wait_eof<F: AsRawFd>(r: &F, deadline: Instant) -> io::Result<bool> {
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        if sys::poll_one(r.as_raw_fd(), libc::POLLIN, Some(left))? == 0 {
            return Ok(false);
        }
        match sys::read_fd(r.as_raw_fd(), &mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads `r` until EOF, the deadline, or MAX_MESSAGE*4 bytes.
fn read_until<F: AsRawFd>(r: &F, deadline: Instant) -> io::Result<Vec<u8>> {
    let fd = r.as_raw_fd();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || out.len() >= MAX_MESSAGE * 4 {
            return Ok(out);
        }
        let ev = sys::poll_one(fd, libc::POLLIN, Some(left))?;
        if ev == 0 {
            return Ok(out);
        }
        match sys::read_fd(fd, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// crun's error text (its log file or stderr), cleaned up; or the exit status if it said
/// nothing.
pub fn failure_message(verb: &str, status: ExitStatus, output: &str) -> String {
    let lines: Vec<&str> = output.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return format!("crun {} failed ({})", verb, status);
    }
    let mut text = lines.join("; ");
    if text.len() > MAX_MESSAGE {
        // Keep the end: crun's last line is the one that says what went wrong.
        let mut cut = text.len() - MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!("...{}", &text[cut..]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eof_wait() {
        let (r, w) = sys::pipe().expect("pipe");
        assert!(!wait_eof(&r, Instant::now() + Duration::from_millis(20)).expect("wait"));
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let _ = sys::write_fd(w.as_raw_fd(), b"x");
            drop(w);
        });
        assert!(wait_eof(&r, Instant::now() + Duration::from_secs(5)).expect("wait"));
        let _ = t.join();
    }

    #[test]
    fn failure_messages() {
        assert_eq!(
            failure_message("create", ExitStatus::Exited(1), "invalid config file, no 'linux' block specified\n"),
            "invalid config file, no 'linux' block specified"
        );
        assert_eq!(
            failure_message("start", ExitStatus::Exited(1), "\n  a\n\nb\n"),
            "a; b"
        );
        assert_eq!(
            failure_message("kill", ExitStatus::Signaled(9), ""),
            "crun kill failed (signal 9)"
        );
        let long = "é".repeat(5000);
        let m = failure_message("create", ExitStatus::Exited(1), &long);
        assert!(m.len() <= MAX_MESSAGE + 5 && m.starts_with("..."));
    }
}
