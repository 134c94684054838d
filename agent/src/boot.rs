//! What the agent does as the guest's init before serving: mounts, console, cgroup
//! controllers, kernel modules, the virtio-fs share. Every step logs and tolerates failure:
//! the host gets a clear error from the request that needs the missing piece.

use crate::config::{MODULES_LIST, SHARED_DIR, SHARED_TAG};
use crate::sys;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Duration;

const NOSUID: libc::c_ulong = libc::MS_NOSUID;
const NODEV: libc::c_ulong = libc::MS_NODEV;
const NOEXEC: libc::c_ulong = libc::MS_NOEXEC;

const RAMFS_MAGIC: i64 = 0x8584_58f6;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// crun pivots into the container's root, and pivot_root(2) refuses to work while the caller's
/// root is the initramfs (rootfs has no parent mount). So, first thing, make `/` a bind mount of
/// the initramfs and chroot into it (what `switch_root` does, without a new filesystem).
pub fn reroot() {
    let root = Path::new("/");
    match sys::fs_type(root) {
        Ok(t) if t == RAMFS_MAGIC || t == TMPFS_MAGIC => {}
        Ok(_) => return, // a real root filesystem: pivot_root works
        Err(e) => {
            crate::warn!("statfs /: {}; not re-rooting", e);
            return;
        }
    }
    let dir = Path::new("/.rootfs");
    let r = std::fs::create_dir_all(dir)
        .and_then(|_| sys::mount("/", dir, "", libc::MS_BIND | libc::MS_REC, None))
        .and_then(|_| std::env::set_current_dir(dir))
        .and_then(|_| sys::mount(".", root, "", libc::MS_MOVE, None))
        .and_then(|_| sys::chroot(Path::new(".")))
        .and_then(|_| std::env::set_current_dir("/"));
    match r {
        Ok(()) => crate::debug!("re-rooted: / is now a bind mount of the initramfs"),
        Err(e) => crate::error!("cannot re-root out of the initramfs: {} (crun's pivot_root will fail)", e),
    }
}

/// Mounts /proc first (the kernel command line lives there), then the rest.
pub fn mount_proc() {
    mount_one("proc", "/proc", "proc", NOSUID | NODEV | NOEXEC, None);
}

pub fn mount_basics() {
    mount_one("sysfs", "/sys", "sysfs", NOSUID | NODEV | NOEXEC, None);
    mount_one("devtmpfs", "/dev", "devtmpfs", NOSUID, Some("mode=0755"));
    ensure_console();
    mount_one("devpts", "/dev/pts", "devpts", NOSUID | NOEXEC, Some("newinstance,ptmxmode=0666,mode=0620,gid=5"));
    mount_one("tmpfs", "/dev/shm", "tmpfs", NOSUID | NODEV, Some("mode=1777"));
    mount_one("tmpfs", "/run", "tmpfs", NOSUID | NODEV, Some("mode=0755"));
    mount_one("tmpfs", "/tmp", "tmpfs", NOSUID | NODEV, Some("mode=1777"));
    mount_one("cgroup2", "/sys/fs/cgroup", "cgroup2", NOSUID | NODEV | NOEXEC, Some("nsdelegate"));
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        if std::fs::symlink_metadata(link).is_err() {
            if let Err(e) = std::os::unix::fs::symlink(target, link) {
                crate::debug!("symlink {} -> {}: {}", link, target, e);
            }
        }
    }
    if std::env::var_os("PATH").is_none() {
        // Before any thread exists: crun is found through PATH.
        std::env::set_var("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
}

fn mount_one(source: &str, target: &str, fstype: &str, flags: libc::c_ulong, data: Option<&str>) {
    let t = Path::new(target);
    if let Err(e) = std::fs::create_dir_all(t) {
        crate::warn!("mkdir {}: {}", target, e);
    }
    match sys::mount(source, t, fstype, flags, data) {
        Ok(()) => crate::debug!("mounted {} on {}", fstype, target),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            crate::debug!("{} already mounted on {}", fstype, target)
        }
        Err(e) => crate::error!("mount {} on {}: {}", fstype, target, e),
    }
}

/// PID 1 may start without fds 0-2 (no /dev/console in the initramfs): open the console.
fn ensure_console() {
    if (0..3).all(sys::fd_is_open) {
        return;
    }
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/console") {
        Ok(f) => {
            for fd in 0..3 {
                if !sys::fd_is_open(fd) {
                    let _ = sys::dup2(f.as_raw_fd(), fd);
                }
            }
        }
        Err(_) => {} // nowhere to log to
    }
}

/// Brings `lo` up, so the guest's root network namespace always has a loopback (the kernel
/// adds 127.0.0.1/8 and ::1 itself).
pub fn loopback_up() {
    match crate::net::link_up("lo") {
        Ok(()) => crate::debug!("lo is up"),
        Err(e) => crate::error!("cannot bring lo up: {}", e),
    }
}

/// Enables every controller the root cgroup offers for its children.
pub fn enable_cgroup_controllers(root: &Path) {
    let available = match std::fs::read_to_string(root.join("cgroup.controllers")) {
        Ok(s) => s,
        Err(e) => {
            crate::error!("cgroup2: cannot read cgroup.controllers: {}", e);
            return;
        }
    };
    let control = root.join("cgroup.subtree_control");
    let all: Vec<String> = available.split_whitespace().map(|c| format!("+{}", c)).collect();
    if all.is_empty() {
        crate::warn!("cgroup2: no controllers available");
        return;
    }
    // All at once first; if the kernel refuses one, enable them one by one and log failures.
    if std::fs::write(&control, all.join(" ")).is_ok() {
        crate::info!("cgroup2: enabled {}", available.trim());
        return;
    }
    let mut enabled = Vec::new();
    for c in &all {
        match std::fs::write(&control, c) {
            Ok(()) => enabled.push(c.trim_start_matches('+').to_string()),
            Err(e) => crate::warn!("cgroup2: cannot enable {}: {}", c, e),
        }
    }
    crate::info!("cgroup2: enabled {}", enabled.join(" "));
}

/// Module name as /proc/modules shows it: file name without `.ko`, `-` → `_`.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let base = file.split(".ko").next().unwrap_or(file);
    base.replace('-', "_")
}

/// Paths listed in modules.list: one per line, `#` comments and blank lines ignored.
pub fn parse_modules_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn load_modules() {
    let text = match std::fs::read_to_string(MODULES_LIST) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => {
            crate::error!("{}: {}", MODULES_LIST, e);
            return;
        }
    };
    for path in parse_modules_list(&text) {
        let loaded = std::fs::read_to_string("/proc/modules").unwrap_or_default();
        let name = module_name(&path);
        if loaded.lines().any(|l| l.split_whitespace().next() == Some(name.as_str())) {
            crate::debug!("module {} already loaded", name);
            continue;
        }
        let r = std::fs::File::open(&path).and_then(|f| sys::finit_module(&f));
        match r {
            Ok(()) => crate::info!("loaded module {}", path),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                crate::debug!("module {} already loaded", name)
            }
            Err(e) => crate::error!("cannot load module {}: {}", path, e),
        }
    }
}

/// Mounts the host's virtio-fs share, retrying briefly while the device appears.
pub fn mount_shared() {
    let target = Path::new(SHARED_DIR);
    if let Err(e) = std::fs::create_dir_all(target) {
        crate::error!("mkdir {}: {}", SHARED_DIR, e);
        return;
    }
    let mut last = None;
    for _ in 0..25 {
        match sys::mount(SHARED_TAG, target, "virtiofs", NOSUID | NODEV, None) {
            Ok(()) => {
                crate::info!("mounted virtio-fs {} on {}", SHARED_TAG, SHARED_DIR);
                return;
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return,
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Some(e) = last {
        crate::error!(
            "cannot mount virtio-fs {} on {}: {} (create requests will fail)",
            SHARED_TAG,
            SHARED_DIR,
            e
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_list() {
        let l = parse_modules_list("# virtio\n/lib/modules/x/virtio_console.ko\n\n  /m/vsock-loopback.ko.xz # c\n");
        assert_eq!(l, vec!["/lib/modules/x/virtio_console.ko", "/m/vsock-loopback.ko.xz"]);
        assert_eq!(module_name("/lib/modules/x/virtio_console.ko"), "virtio_console");
        assert_eq!(module_name("/m/vsock-loopback.ko.xz"), "vsock_loopback");
        assert_eq!(module_name("fuse.ko"), "fuse");
    }

    #[test]
    fn cgroup_controllers_written() {
        let dir = std::env::temp_dir().join(format!("kata-agent-cg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("cgroup.controllers"), "cpuset cpu io memory pids\n").expect("w");
        enable_cgroup_controllers(&dir);
        assert_eq!(
            std::fs::read_to_string(dir.join("cgroup.subtree_control")).expect("r"),
            "+cpuset +cpu +io +memory +pids"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
