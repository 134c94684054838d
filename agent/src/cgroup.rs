//! The container's cgroup (v2) as crun places it, and what `ps`, `stats` and the OOM watch read
//! from it.
//!
//! crun's default cgroup manager (cgroupfs; the agent never passes `--systemd-cgroup`) puts a
//! container at `<cgroup root>/<linux.cgroupsPath>` when the path is absolute, at
//! `<root>/<path>` when it is relative, and at `<root>/<containerId>` when there is none
//! (crun 1.8.1, `make_cgroup_path` in libcrun/cgroup-cgroupfs.c). `crun exec` without
//! `--cgroup` puts the new process in that same cgroup.

use crate::msg::{ProcessInfo, StatsResult};
use serde_json::Value;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest `cmd` in a `ps` entry, in bytes.
pub const MAX_CMD: usize = 4096;
/// Sub-cgroups deeper than this (below the container's) are not searched for processes.
const MAX_DEPTH: usize = 16;
/// No `ps` lists more processes than this.
const MAX_PROCESSES: usize = 65536;
/// Largest integer a JSON number keeps exactly in JavaScript (2^53 - 1): counters saturate
/// here, and a limit above it is reported as no limit (`null`).
pub const MAX_SAFE: u64 = (1 << 53) - 1;

/// The directory of the container's cgroup, from the spec's `linux.cgroupsPath`. Rejects
/// paths that would leave the cgroup root.
pub fn container_dir(root: &Path, cgroups_path: Option<&str>, id: &str) -> Result<PathBuf, String> {
    let rel = match cgroups_path {
        None => id,
        Some(p) => p,
    };
    let mut dir = root.to_path_buf();
    let mut parts = 0;
    for c in Path::new(rel).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => {
                dir.push(n);
                parts += 1;
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("linux.cgroupsPath {:?} must not contain ..", rel))
            }
        }
    }
    if parts == 0 {
        return Err(format!("linux.cgroupsPath {:?} names the cgroup root", rel));
    }
    Ok(dir)
}

/// Every pid in `dir`'s cgroup.procs and in those of its sub-cgroups. A missing `dir` (the
/// cgroup is gone: the container was deleted) has no processes.
pub fn pids(dir: &Path) -> io::Result<Vec<i32>> {
    let mut out = Vec::new();
    match collect_pids(dir, 0, &mut out) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => other?,
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn collect_pids(dir: &Path, depth: usize, out: &mut Vec<i32>) -> io::Result<()> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs"))?;
    for line in procs.lines() {
        if out.len() >= MAX_PROCESSES {
            return Ok(());
        }
        if let Ok(pid) = line.trim().parse::<i32>() {
            if pid > 0 {
                out.push(pid);
            }
        }
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = match entry {
            Ok(e) => e,
            Err(_) => continue,
        };
        // file_type does not follow symlinks: cgroupfs has none, and we never follow one.
        if entry.file_type().map_or(false, |t| t.is_dir()) {
            match collect_pids(&entry.path(), depth + 1, out) {
                Ok(()) => {}
                // A sub-cgroup removed while we walk it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// How long one `ps` may spend waiting for processes in the middle of execve (see
/// `process_info`).
const EXECVE_WAIT: Duration = Duration::from_millis(100);

/// pid, ppid, real uid and command line of one process from `<proc>/<pid>`; `None` if it is
/// gone (or unreadable). Until `patience` it re-reads an empty command line of a live process.
pub fn process_info(proc_root: &Path, pid: i32, patience: Instant) -> Option<ProcessInfo> {
    let base = proc_root.join(pid.to_string());
    let stat = std::fs::read(base.join("stat")).ok()?;
    let stat = String::from_utf8_lossy(&stat);
    // "pid (comm) state ppid ...": comm may contain spaces and ')', so cut at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    if close < open {
        return None;
    }
    let comm = &stat[open + 1..close];
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?;
    let ppid: i32 = rest.next()?.parse().ok()?;
    let status = std::fs::read_to_string(base.join("status")).ok()?;
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let mut cmdline = std::fs::read(base.join("cmdline")).unwrap_or_default();
    // A live process shows an empty command line only in the middle of execve (the new comm is
    // set before the new arguments are): `exec` answers just before crun's execve, so a `ps`
    // right after it can catch that. It lasts microseconds; look again briefly.
    while cmdline.is_empty() && state != "Z" && state != "X" && Instant::now() < patience {
        std::thread::sleep(Duration::from_millis(1));
        cmdline = std::fs::read(base.join("cmdline")).unwrap_or_default();
    }
    Some(ProcessInfo { pid, ppid, uid, cmd: command(&cmdline, comm) })
}

/// The command line joined with spaces, or `[comm]` when it is empty (kernel threads,
/// zombies); at most MAX_CMD bytes.
pub fn command(cmdline: &[u8], comm: &str) -> String {
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // A trailing NUL leaves one empty piece at the end.
    let mut args = args;
    if args.last().map_or(false, |a| a.is_empty()) {
        args.pop();
    }
    let text = if args.iter().all(|a| a.is_empty()) {
        format!("[{}]", comm)
    } else {
        args.join(" ")
    };
    truncate(text, MAX_CMD)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// `ps`: every process of the cgroup `dir` (recursively), sorted by pid.
pub fn ps(dir: &Path, proc_root: &Path) -> io::Result<Vec<ProcessInfo>> {
    let patience = Instant::now() + EXECVE_WAIT;
    Ok(pids(dir)?.into_iter().filter_map(|p| process_info(proc_root, p, patience)).collect())
}

/// Reads a one-value file: a number, or `None` for `max`, a missing file or anything else.
fn read_value(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse().ok()
}

/// A counter (0 when missing), saturated at MAX_SAFE.
fn counter(v: Option<u64>) -> u64 {
    v.unwrap_or(0).min(MAX_SAFE)
}

/// A limit: `None` for max/missing and for values beyond MAX_SAFE (no limit in practice).
fn limit(v: Option<u64>) -> Option<u64> {
    v.filter(|n| *n <= MAX_SAFE)
}

/// `key value` lines of a flat-keyed cgroup file (cpu.stat, memory.stat, memory.events).
/// A missing file has no keys.
fn read_keyed(path: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            if it.next().is_some() {
                return None;
            }
            Some((k.to_string(), v))
        })
        .collect()
}

fn key(pairs: &[(String, u64)], name: &str) -> Option<u64> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

/// The `oom_kill` counter of memory.events (0 without the memory controller).
pub fn oom_kills(dir: &Path) -> u64 {
    key(&read_keyed(&dir.join("memory.events")), "oom_kill").unwrap_or(0)
}

/// `stats` from the cgroup's files. Fails only if the cgroup directory itself is missing.
pub fn stats(dir: &Path) -> io::Result<StatsResult> {
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("cgroup {} does not exist", dir.display()),
        ));
    }
    let cpu = read_keyed(&dir.join("cpu.stat"));
    let mut memory_stat = serde_json::Map::new();
    for (k, v) in read_keyed(&dir.join("memory.stat")) {
        memory_stat.insert(k, Value::from(v.min(MAX_SAFE)));
    }
    Ok(StatsResult {
        cpu_usage_usec: counter(key(&cpu, "usage_usec")),
        cpu_user_usec: counter(key(&cpu, "user_usec")),
        cpu_system_usec: counter(key(&cpu, "system_usec")),
        memory_current: counter(read_value(&dir.join("memory.current"))),
        memory_max: limit(read_value(&dir.join("memory.max"))),
        memory_swap_current: read_value(&dir.join("memory.swap.current")).map(|v| v.min(MAX_SAFE)),
        pids_current: counter(read_value(&dir.join("pids.current"))),
        pids_max: limit(read_value(&dir.join("pids.max"))),
        oom_kills: counter(Some(oom_kills(dir))),
        memory_stat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kata-agent-cg-{}-{}", std::process::id(), name));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn container_dirs_follow_crun() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(container_dir(root, Some("/kata/c1"), "c1"), Ok(PathBuf::from("/sys/fs/cgroup/kata/c1")));
        assert_eq!(container_dir(root, Some("kata/c1"), "c1"), Ok(PathBuf::from("/sys/fs/cgroup/kata/c1")));
        assert_eq!(container_dir(root, None, "c1"), Ok(PathBuf::from("/sys/fs/cgroup/c1")));
        assert_eq!(container_dir(root, Some("//a/./b/"), "c1"), Ok(PathBuf::from("/sys/fs/cgroup/a/b")));
        for bad in ["/kata/../..", "..", "/", "", "a/../b"] {
            assert!(container_dir(root, Some(bad), "c1").is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn commands() {
        assert_eq!(command(b"sh\0-c\0echo hi\0", "sh"), "sh -c echo hi");
        assert_eq!(command(b"", "kworker/0:1"), "[kworker/0:1]");
        assert_eq!(command(b"\0", "x"), "[x]");
        assert_eq!(command(b"a\xffb\0", "x"), "a\u{fffd}b");
        let long = [b'\xc3', b'\xa9'].repeat(3000);
        let c = command(&long, "x");
        assert!(c.len() <= MAX_CMD && c.len() >= MAX_CMD - 1);
    }

    #[test]
    fn pids_recursive_and_missing() {
        let d = tmp("pids");
        std::fs::write(d.join("cgroup.procs"), "5\n3\n").expect("w");
        std::fs::create_dir_all(d.join("sub/deeper")).expect("mkdir");
        std::fs::write(d.join("sub/cgroup.procs"), "9\n").expect("w");
        std::fs::write(d.join("sub/deeper/cgroup.procs"), "7\n3\n").expect("w");
        assert_eq!(pids(&d).expect("pids"), vec![3, 5, 7, 9]);
        assert_eq!(pids(&d.join("gone")).expect("pids"), Vec::<i32>::new());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn our_own_process_info() {
        let me = std::process::id() as i32;
        let p = process_info(Path::new("/proc"), me, Instant::now()).expect("self");
        assert_eq!(p.pid, me);
        // SAFETY (test): getppid/getuid take no arguments and cannot fail.
        let (ppid, uid) = unsafe { (libc::getppid(), libc::getuid()) };
        assert_eq!(p.ppid, ppid);
        assert_eq!(p.uid, uid);
        assert!(!p.cmd.is_empty());
        assert!(process_info(Path::new("/proc"), i32::MAX, Instant::now()).is_none());
    }

    #[test]
    fn fake_proc_entry_with_odd_comm() {
        let d = tmp("proc");
        std::fs::create_dir_all(d.join("42")).expect("mkdir");
        std::fs::write(d.join("42/stat"), "42 (a) b (c) Z 7 42 42 0 -1 0").expect("w");
        std::fs::write(d.join("42/status"), "Name:\ta\nUid:\t1000\t1000\t1000\t1000\n").expect("w");
        std::fs::write(d.join("42/cmdline"), "").expect("w");
        assert_eq!(
            process_info(&d, 42, Instant::now() + Duration::from_secs(10)),
            Some(ProcessInfo { pid: 42, ppid: 7, uid: 1000, cmd: "[a) b (c]".into() })
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn stats_from_files() {
        let d = tmp("stats");
        std::fs::write(d.join("cpu.stat"), "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 0\n").expect("w");
        std::fs::write(d.join("memory.current"), "4096\n").expect("w");
        std::fs::write(d.join("memory.max"), "max\n").expect("w");
        std::fs::write(d.join("pids.current"), "3\n").expect("w");
        std::fs::write(d.join("pids.max"), "100\n").expect("w");
        std::fs::write(d.join("memory.events"), "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n").expect("w");
        std::fs::write(d.join("memory.stat"), "anon 8192\nfile 4096\nbogus x\n").expect("w");
        let s = stats(&d).expect("stats");
        assert_eq!(
            serde_json::to_string(&s).expect("json"),
            r#"{"cpuUsageUsec":100,"cpuUserUsec":60,"cpuSystemUsec":40,"memoryCurrent":4096,"memoryMax":null,"memorySwapCurrent":null,"pidsCurrent":3,"pidsMax":100,"oomKills":1,"memoryStat":{"anon":8192,"file":4096}}"#
        );
        assert!(stats(&d.join("gone")).is_err());
        // Beyond 2^53: limits read as none, counters saturate.
        std::fs::write(d.join("memory.max"), "9223372036854771712\n").expect("w");
        std::fs::write(d.join("memory.current"), "18446744073709551615\n").expect("w");
        let s = stats(&d).expect("stats");
        assert_eq!(s.memory_max, None);
        assert_eq!(s.memory_current, MAX_SAFE);
        let _ = std::fs::remove_dir_all(&d);
    }
}
