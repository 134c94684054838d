//! The agent as the real /init of a QEMU guest with real crun. Ignored by default (needs root,
//! QEMU, virtiofsd, busybox-static and a guest image):
//!
//!     img=$(mktemp -d); guest/build.sh --agent "$(agent/build.sh)" --out "$img"
//!     cd agent && KATA_AGENT_VM_IMAGE=$img cargo test --test vm -- --ignored --nocapture
//!
//! Boots the image on `-M microvm` under TCG with the device set of guest/smoke.sh, shares a
//! busybox rootfs over virtio-fs, then drives the agent over the virtio-serial socket: handshake,
//! create/start with stdio relay and stdin EOF, exit code, signal, list, shutdown (QEMU exits).
//! `real_guest_exec_terminal_ps_stats` covers exec (pipes and terminal, crun's error texts),
//! resize, a terminal init, ps, stats, update and an OOM kill. Run one at a time (TCG):
//! `-- --ignored --nocapture --test-threads=1`.

use kata_agent::frame::{self, Frame};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

struct Vm {
    dir: PathBuf,
    qemu: Child,
    virtiofsd: Child,
    writer: UnixStream,
    frames: Receiver<Option<Frame>>,
    backlog: Vec<Frame>,
    next_id: u32,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        let _ = self.virtiofsd.kill();
        let _ = self.virtiofsd.wait();
        eprintln!("vm test files (console.log) kept in {}", self.dir.display());
    }
}

fn wait_path(p: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn make_rootfs(root: &Path) {
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir rootfs");
    }
    let busybox = std::fs::canonicalize("/bin/busybox").expect("busybox-static installed");
    std::fs::copy(&busybox, root.join("bin/busybox")).expect("copy busybox");
    for applet in ["sh", "cat", "echo", "sleep", "head", "wc", "tr", "true", "ls", "stty", "id", "pwd", "tail"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
}

fn spec(id: &str, args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin", "HOME=/root"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": "/run/kata/shared/rootfs", "readonly": true},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","nodev"]}
        ],
        "linux": {
            "cgroupsPath": format!("/kata/{}", id),
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
        }
    })
}

impl Vm {
    fn boot(name: &str) -> Vm {
        let img = PathBuf::from(std::env::var("KATA_AGENT_VM_IMAGE").expect("set KATA_AGENT_VM_IMAGE"));
        let dir = std::env::temp_dir().join(format!("kata-agent-vm-{}-{}", std::process::id(), name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("shared")).expect("mkdir");
        make_rootfs(&dir.join("shared/rootfs"));
        let vfs_sock = dir.join("virtiofsd.sock");
        let virtiofsd = Command::new("/usr/lib/qemu/virtiofsd")
            .arg(format!("--socket-path={}", vfs_sock.display()))
            .arg("-o")
            .arg(format!("source={}", dir.join("shared").display()))
            .arg("-o")
            .arg("cache=auto")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("virtiofsd.log")).expect("log")))
            .spawn()
            .expect("virtiofsd");
        wait_path(&vfs_sock, Duration::from_secs(10));
        let agent_sock = dir.join("agent.sock");
        let mem = 512;
        let qemu = Command::new("qemu-system-x86_64")
            .args(["-name", "kata-agent-vm", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot"])
            .args(["-accel", "tcg", "-machine", "microvm,acpi=off,memory-backend=mem", "-smp", "1"])
            .arg("-m")
            .arg(format!("{}M", mem))
            .arg("-object")
            .arg(format!("memory-backend-memfd,id=mem,size={}M,share=on", mem))
            .arg("-kernel")
            .arg(img.join("vmlinux"))
            .arg("-initrd")
            .arg(img.join("initrd.img"))
            .arg("-append")
            .arg("console=ttyS0 panic=-1 reboot=t tsc=reliable no_timer_check kata.debug=1")
            .args(["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"])
            .args(["-global", "virtio-mmio.force-legacy=false", "-device", "virtio-serial-device,id=vser0"])
            .arg("-chardev")
            .arg(format!("socket,id=agent,path={},server=on,wait=off", agent_sock.display()))
            .args(["-device", "virtserialport,bus=vser0.0,chardev=agent,name=agent.0"])
            .arg("-chardev")
            .arg(format!("socket,id=vfs,path={}", vfs_sock.display()))
            .args(["-device", "vhost-user-fs-device,chardev=vfs,tag=kataShared,queue-size=1024"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(dir.join("console.log")).expect("console")))
            .stderr(Stdio::from(std::fs::File::create(dir.join("qemu.stderr")).expect("stderr")))
            .spawn()
            .expect("qemu");
        wait_path(&agent_sock, Duration::from_secs(10));
        let (writer, frames) = connect(&agent_sock);
        let mut vm = Vm { dir, qemu, virtiofsd, writer, frames, backlog: Vec::new(), next_id: 1 };
        vm.handshake();
        vm
    }

    fn handshake(&mut self) {
        let t0 = Instant::now();
        self.send(&Frame::Hello(br#"{"version":1,"maxPayload":65536,"window":262144}"#.to_vec()));
        match self.next(Duration::from_secs(60)) {
            Frame::Hello(p) => eprintln!(
                "agent HELLO after {:?}: {}",
                t0.elapsed(),
                String::from_utf8_lossy(&p)
            ),
            other => panic!("expected HELLO, got {:?}", other),
        }
    }

    /// Hangs up (the guest sees end-of-file on its port) and connects again.
    fn reconnect(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
        std::thread::sleep(Duration::from_millis(500));
        let (writer, frames) = connect(&self.dir.join("agent.sock"));
        self.writer = writer;
        self.frames = frames;
        self.backlog.clear();
        self.handshake();
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default()
    }

    fn send(&mut self, f: &Frame) {
        let b = frame::encode(f).expect("encode");
        self.writer.write_all(&b).expect("write");
    }

    fn next(&mut self, timeout: Duration) -> Frame {
        if !self.backlog.is_empty() {
            return self.backlog.remove(0);
        }
        match self.frames.recv_timeout(timeout) {
            Ok(Some(f)) => f,
            Ok(None) => panic!("agent connection closed\n{}", self.console()),
            Err(_) => panic!("timeout waiting for the agent\n{}", self.console()),
        }
    }

    fn request(&mut self, req: Value) -> Value {
        let v = self.request_raw(req.clone());
        assert!(v.get("err").is_none(), "{} failed: {}\n{}", req, v, self.console());
        v["ok"].clone()
    }

    fn request_raw(&mut self, req: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let m = json!({"kind":"req","id":id,"req":req});
        self.send(&Frame::Msg(serde_json::to_vec(&m).expect("json")));
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut kept = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = match self.frames.recv_timeout(left) {
                Ok(Some(f)) => f,
                _ => panic!("no response to {}\n{}", m, self.console()),
            };
            if let Frame::Msg(p) = &f {
                let v: Value = serde_json::from_slice(p).expect("json");
                if v["kind"] == "res" && v["id"] == id {
                    self.backlog.extend(kept);
                    return v;
                }
            }
            kept.push(f);
        }
    }

    fn until_exit(&mut self, id: &str) -> (Vec<Frame>, Value) {
        self.until_event(|e| e["type"] == "exit" && e["containerId"] == id && e.get("execId").is_none())
    }

    fn until_exec_exit(&mut self, id: &str, exec_id: &str) -> (Vec<Frame>, Value) {
        self.until_event(|e| e["type"] == "exit" && e["containerId"] == id && e["execId"] == exec_id)
    }

    /// Frames until an event matching `pred` (other events are kept in the frames).
    fn until_event(&mut self, pred: impl Fn(&Value) -> bool) -> (Vec<Frame>, Value) {
        let mut got = Vec::new();
        loop {
            let f = self.next(Duration::from_secs(60));
            if let Frame::Msg(p) = &f {
                let v: Value = serde_json::from_slice(p).expect("json");
                if v["kind"] == "event" && pred(&v["event"]) {
                    return (got, v["event"].clone());
                }
            }
            got.push(f);
        }
    }

    /// DATA of `stream` until it contains `want` (other frames stay in the backlog).
    fn read_until(&mut self, stream: u32, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut got = Vec::new();
        let mut kept = Vec::new();
        while !String::from_utf8_lossy(&got).contains(want) {
            assert!(Instant::now() < deadline, "no {:?} in {:?}\n{}", want, String::from_utf8_lossy(&got), self.console());
            match self.next(Duration::from_secs(60)) {
                Frame::Data { stream: s, data } if s == stream => got.extend(data),
                f => kept.push(f),
            }
        }
        kept.append(&mut self.backlog);
        self.backlog = kept;
        String::from_utf8_lossy(&got).into_owned()
    }
}

fn connect(sock: &Path) -> (UnixStream, Receiver<Option<Frame>>) {
    let stream = UnixStream::connect(sock).expect("connect agent.sock");
    let mut reader = stream.try_clone().expect("clone");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || loop {
        match frame::read_frame(&mut reader) {
            Ok(Some(f)) => {
                if tx.send(Some(f)).is_err() {
                    return;
                }
            }
            _ => {
                let _ = tx.send(None);
                return;
            }
        }
    });
    (stream, rx)
}

fn data(frames: &[Frame], stream: u32) -> String {
    let b: Vec<u8> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data { stream: s, data } if *s == stream => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
#[ignore]
fn real_guest_real_crun() {
    let mut vm = Vm::boot("main");
    assert_eq!(vm.request(json!({"op":"ping"})), json!({}));

    let t = Instant::now();
    let r = vm.request(json!({"op":"create","containerId":"c1",
        "spec":spec("c1", &["sh","-c","echo hello from $(hostname 2>/dev/null || echo c); cat; echo err >&2; exit 3"]),
        "stdio":{"stdin":1,"stdout":2,"stderr":3}}));
    eprintln!("create: {} in {:?}", r, t.elapsed());
    let pid = r["pid"].clone();
    vm.request(json!({"op":"start","containerId":"c1"}));
    vm.send(&Frame::Data { stream: 1, data: b"from stdin\n".to_vec() });
    vm.send(&Frame::Close { stream: 1 });
    let (frames, ev) = vm.until_exit("c1");
    eprintln!("c1 stdout {:?} stderr {:?} exit {}", data(&frames, 2), data(&frames, 3), ev);
    assert!(data(&frames, 2).starts_with("hello from"));
    assert!(data(&frames, 2).ends_with("from stdin\n"));
    assert_eq!(data(&frames, 3), "err\n");
    assert!(frames.contains(&Frame::Close { stream: 2 }) && frames.contains(&Frame::Close { stream: 3 }));
    assert_eq!(ev, json!({"type":"exit","containerId":"c1","pid":pid,"code":3,"signal":null}));

    // The host goes away and comes back: the agent must wait through the port's EOF and
    // answer the new HELLO.
    vm.reconnect();
    assert_eq!(vm.request(json!({"op":"ping"})), json!({}));

    vm.request(json!({"op":"create","containerId":"c2","spec":spec("c2", &["sleep","1000"]),
        "stdio":{"stdin":null,"stdout":4,"stderr":null}}));
    vm.request(json!({"op":"start","containerId":"c2"}));
    let list = vm.request(json!({"op":"list"}));
    eprintln!("list: {}", list);
    assert_eq!(list["containers"][1]["status"], "running");
    vm.request(json!({"op":"signal","containerId":"c2","signal":9,"all":false}));
    let (_, ev) = vm.until_exit("c2");
    assert_eq!(ev["signal"], 9);

    // 1 MiB of output through the port, within the credit window (the host grants CREDIT as
    // it consumes, like the monitor does).
    vm.request(json!({"op":"create","containerId":"c3",
        "spec":spec("c3", &["sh","-c","head -c 1048576 /dev/zero | tr '\\0' x"]),
        "stdio":{"stdin":null,"stdout":5,"stderr":6}}));
    let t = Instant::now();
    vm.request(json!({"op":"start","containerId":"c3"}));
    let mut got = 0usize;
    loop {
        match vm.next(Duration::from_secs(60)) {
            Frame::Data { stream: 5, data } => {
                assert!(data.iter().all(|b| *b == b'x'));
                got += data.len();
                vm.send(&Frame::Credit { stream: 5, credit: data.len() as u32 });
            }
            Frame::Msg(p) => {
                let v: Value = serde_json::from_slice(&p).expect("json");
                if v["kind"] == "event" {
                    assert_eq!(v["event"]["code"], 0, "{}", v);
                    break;
                }
            }
            _ => {}
        }
    }
    eprintln!("c3: {} bytes of stdout in {:?}", got, t.elapsed());
    assert_eq!(got, 1 << 20);

    // 600 KB of stdin (more than two windows): DATA only within credit, CREDIT after the pipe.
    vm.request(json!({"op":"create","containerId":"c5","spec":spec("c5", &["wc","-c"]),
        "stdio":{"stdin":7,"stdout":8,"stderr":null}}));
    vm.request(json!({"op":"start","containerId":"c5"}));
    let t = Instant::now();
    let (total, mut sent, mut window) = (600_000usize, 0usize, 262_144usize);
    let mut frames = Vec::new();
    while sent < total {
        if window == 0 {
            match vm.next(Duration::from_secs(60)) {
                Frame::Credit { stream: 7, credit } => window += credit as usize,
                f => frames.push(f),
            }
            continue;
        }
        let n = window.min(65536).min(total - sent);
        vm.send(&Frame::Data { stream: 7, data: vec![b'z'; n] });
        sent += n;
        window -= n;
    }
    vm.send(&Frame::Close { stream: 7 });
    vm.backlog.extend(frames);
    let (frames, ev) = vm.until_exit("c5");
    eprintln!("c5: wc -c says {:?} after {:?}", data(&frames, 8), t.elapsed());
    assert_eq!(data(&frames, 8).trim(), "600000");
    assert_eq!(ev["code"], 0);

    // crun's own error comes back as E_CRUN.
    let mut bad = spec("c4", &["true"]);
    bad["root"]["path"] = json!("/run/kata/shared/no-such-rootfs");
    let r = vm.request_raw(json!({"op":"create","containerId":"c4","spec":bad,
        "stdio":{"stdin":null,"stdout":null,"stderr":null}}));
    eprintln!("c4: {}", r);
    assert_eq!(r["err"]["code"], "E_CRUN");
    assert!(r["err"]["message"].as_str().unwrap_or("").contains("no-such-rootfs"), "{}", r);

    let t = Instant::now();
    assert_eq!(vm.request(json!({"op":"shutdown"})), json!({}));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = vm.qemu.try_wait().expect("try_wait") {
            eprintln!("QEMU exited {:?} {:?} after shutdown", st, t.elapsed());
            break;
        }
        assert!(Instant::now() < deadline, "QEMU still running after shutdown\n{}", vm.console());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("--- console ---\n{}", vm.console());
}

fn exec_process(args: &[&str]) -> Value {
    json!({"terminal": false, "user": {"uid": 0, "gid": 0}, "args": args,
        "env": ["PATH=/bin", "HOME=/root"], "cwd": "/"})
}

#[test]
#[ignore]
fn real_guest_exec_terminal_ps_stats() {
    let mut vm = Vm::boot("exec");
    let none = json!({"stdin":null,"stdout":null,"stderr":null});
    let r = vm.request(json!({"op":"create","containerId":"c1","spec":spec("c1", &["sleep","1000"]),"stdio":none}));
    let init = r["pid"].as_i64().expect("pid");
    vm.request(json!({"op":"start","containerId":"c1"}));

    // exec with pipes: output, stdin EOF, exit code, execId in the event.
    let t = Instant::now();
    let r = vm.request(json!({"op":"exec","containerId":"c1","execId":"e1",
        "process":exec_process(&["sh","-c","echo out; echo err >&2; cat; pwd; exit 4"]),
        "stdio":{"stdin":1,"stdout":2,"stderr":3}}));
    eprintln!("exec e1: {} in {:?}", r, t.elapsed());
    let pid = r["pid"].clone();
    vm.send(&Frame::Data { stream: 1, data: b"in\n".to_vec() });
    vm.send(&Frame::Close { stream: 1 });
    let (frames, ev) = vm.until_exec_exit("c1", "e1");
    eprintln!("e1 stdout {:?} stderr {:?} exit {}", data(&frames, 2), data(&frames, 3), ev);
    assert_eq!(data(&frames, 2), "out\nin\n/\n");
    assert_eq!(data(&frames, 3), "err\n");
    assert!(frames.contains(&Frame::Close { stream: 2 }) && frames.contains(&Frame::Close { stream: 3 }));
    assert_eq!(ev, json!({"type":"exit","containerId":"c1","execId":"e1","pid":pid,"code":4,"signal":null}));

    // crun's errors, synchronously with --detach.
    let mut errors = Vec::new();
    for (eid, process) in [
        ("nf", exec_process(&["/bin/no-such-binary"])),
        ("nf2", exec_process(&["no-such-binary"])),
        ("cwd", {
            let mut p = exec_process(&["true"]);
            p["cwd"] = json!("/no/such/dir");
            p
        }),
    ] {
        let r = vm.request_raw(json!({"op":"exec","containerId":"c1","execId":eid,"process":process,"stdio":none}));
        eprintln!("exec {}: {}", eid, r);
        assert_eq!(r["err"]["code"], "E_CRUN", "{}", r);
        errors.push(r["err"]["message"].as_str().unwrap_or("").to_string());
    }
    assert!(errors[0].contains("no-such-binary") && errors[1].contains("no-such-binary"), "{:?}", errors);
    assert!(errors[2].contains("/no/such/dir"), "{:?}", errors);
    // A uid the container does not know is not an error.
    let mut p = exec_process(&["id"]);
    p["user"] = json!({"uid": 12345, "gid": 23456});
    vm.request(json!({"op":"exec","containerId":"c1","execId":"uid","process":p,"stdio":{"stdin":null,"stdout":4,"stderr":5}}));
    let (frames, ev) = vm.until_exec_exit("c1", "uid");
    eprintln!("exec uid: {:?} {:?} {}", data(&frames, 4), data(&frames, 5), ev);
    assert!(data(&frames, 4).contains("uid=12345") && ev["code"] == 0, "{:?}", data(&frames, 4));

    // exec with a terminal: consoleSize, resize, echo, CLOSE before exit.
    let mut p = exec_process(&["sh","-c","stty size; read l; stty size; echo got $l; exit 2"]);
    p["terminal"] = json!(true);
    p["consoleSize"] = json!({"height": 24, "width": 80});
    let r = vm.request(json!({"op":"exec","containerId":"c1","execId":"tty","process":p,"stdio":{"stdin":6,"stdout":7,"stderr":null}}));
    let out = vm.read_until(7, "24 80");
    eprintln!("tty first output {:?}", out);
    vm.request(json!({"op":"resize","containerId":"c1","execId":"tty","rows":50,"cols":132}));
    vm.send(&Frame::Data { stream: 6, data: b"hi\n".to_vec() });
    let (frames, ev) = vm.until_exec_exit("c1", "tty");
    let rest = data(&frames, 7);
    eprintln!("tty rest {:?} exit {}", rest, ev);
    assert!(rest.contains("50 132\r\n") && rest.contains("got hi\r\n"), "{:?}", rest);
    assert!(frames.contains(&Frame::Close { stream: 7 }));
    assert_eq!(ev, json!({"type":"exit","containerId":"c1","execId":"tty","pid":r["pid"],"code":2,"signal":null}));
    let r = vm.request_raw(json!({"op":"resize","containerId":"c1","rows":1,"cols":1}));
    assert_eq!(r["err"]["code"], "E_BAD_STATE", "{}", r);

    // ps: the init and a running exec, from the container's cgroup.
    let r = vm.request(json!({"op":"exec","containerId":"c1","execId":"sl","process":exec_process(&["sleep","500"]),"stdio":none}));
    let sl = r["pid"].as_i64().expect("pid");
    let ps = vm.request(json!({"op":"ps","containerId":"c1"}));
    eprintln!("ps: {}", ps);
    let procs = ps["processes"].as_array().expect("processes").clone();
    let find = |pid: i64| procs.iter().find(|p| p["pid"] == pid).cloned();
    assert_eq!(find(init).expect("init in ps")["cmd"], "sleep 1000");
    assert_eq!(find(sl).expect("exec in ps")["cmd"], "sleep 500");
    assert_eq!(find(sl).expect("exec")["ppid"], 1, "exec re-parented to the agent");

    // signal with execId.
    vm.request(json!({"op":"signal","containerId":"c1","execId":"sl","signal":15,"all":true}));
    let (_, ev) = vm.until_exec_exit("c1", "sl");
    assert_eq!(ev["signal"], 15);
    assert_eq!(vm.request(json!({"op":"list"}))["containers"][0]["status"], "running");

    // stats, update.
    let st = vm.request(json!({"op":"stats","containerId":"c1"}));
    eprintln!("stats: {}", st);
    assert!(st["cpuUsageUsec"].as_u64().unwrap_or(0) > 0, "{}", st);
    assert!(st["pidsCurrent"].as_u64().unwrap_or(0) >= 1, "{}", st);
    assert!(st["memoryStat"].as_object().map_or(false, |m| m.contains_key("anon")), "{}", st);
    vm.request(json!({"op":"update","containerId":"c1","resources":{"pids":{"limit":50},"memory":{"limit":67108864}}}));
    let st = vm.request(json!({"op":"stats","containerId":"c1"}));
    eprintln!("stats after update: {}", st);
    assert_eq!(st["pidsMax"], 50);
    assert_eq!(st["memoryMax"], 67108864);
    let r = vm.request_raw(json!({"op":"update","containerId":"c1","resources":{"cpu":{"cpus":"99-100"}}}));
    eprintln!("bad update: {}", r);

    // A container with a terminal.
    let mut sp = spec("t1", &["sh","-c","stty size; read l; echo got $l; echo to-stderr >&2; exit 6"]);
    sp["process"]["terminal"] = json!(true);
    sp["process"]["consoleSize"] = json!({"height": 33, "width": 99});
    let r = vm.request(json!({"op":"create","containerId":"t1","spec":sp,"stdio":{"stdin":8,"stdout":9,"stderr":null}}));
    let tpid = r["pid"].clone();
    vm.request(json!({"op":"start","containerId":"t1"}));
    let out = vm.read_until(9, "33 99");
    eprintln!("t1 first output {:?}", out);
    vm.request(json!({"op":"resize","containerId":"t1","rows":10,"cols":20}));
    vm.send(&Frame::Data { stream: 8, data: b"there\n".to_vec() });
    let (frames, ev) = vm.until_exit("t1");
    let rest = data(&frames, 9);
    eprintln!("t1 rest {:?} exit {}", rest, ev);
    assert!(rest.contains("got there\r\n") && rest.contains("to-stderr\r\n"), "{:?}", rest);
    assert!(frames.contains(&Frame::Close { stream: 9 }));
    assert_eq!(ev, json!({"type":"exit","containerId":"t1","pid":tpid,"code":6,"signal":null}));

    // OOM: a 16 MiB container that wants more.
    let mut sp = spec("m1", &["sh","-c","x=$(head -c 67108864 /dev/zero | tr '\\0' x); echo survived"]);
    sp["linux"]["resources"] = json!({"memory": {"limit": 16777216, "swap": 16777216}});
    vm.request(json!({"op":"create","containerId":"m1","spec":sp,"stdio":{"stdin":null,"stdout":10,"stderr":11}}));
    vm.request(json!({"op":"start","containerId":"m1"}));
    let (frames, ev) = vm.until_exit("m1");
    let oom = frames.iter().position(|f| matches!(f, Frame::Msg(p) if serde_json::from_slice::<Value>(p).map_or(false, |v| v["event"]["type"] == "oom")));
    eprintln!("m1: stdout {:?} stderr {:?} exit {} oom event at {:?}", data(&frames, 10), data(&frames, 11), ev, oom);
    assert!(oom.is_some(), "no oom event before the exit");

    // Exec into a stopped container.
    let r = vm.request_raw(json!({"op":"exec","containerId":"t1","execId":"late","process":exec_process(&["true"]),"stdio":none}));
    assert_eq!(r["err"]["code"], "E_BAD_STATE", "{}", r);

    // The init's exit comes after the exits of the execs that die with it (pid namespace).
    vm.request(json!({"op":"exec","containerId":"c1","execId":"w","process":exec_process(&["sleep","600"]),"stdio":{"stdin":null,"stdout":12,"stderr":null}}));
    vm.request(json!({"op":"signal","containerId":"c1","signal":9,"all":false}));
    let (frames, ev) = vm.until_exit("c1");
    let exec_exit = frames.iter().any(|f| matches!(f, Frame::Msg(p) if serde_json::from_slice::<Value>(p).map_or(false, |v| v["event"]["execId"] == "w")));
    eprintln!("c1 exit {} (exec w reported before: {})", ev, exec_exit);
    assert!(exec_exit);
    assert_eq!(ev["signal"], 9);

    assert_eq!(vm.request(json!({"op":"shutdown"})), json!({}));
    let deadline = Instant::now() + Duration::from_secs(30);
    while vm.qemu.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "QEMU still running after shutdown\n{}", vm.console());
        std::thread::sleep(Duration::from_millis(50));
    }
}
