//! Runs the real agent binary on the host, connected over a unix socket to a test "host", with
//! tests/fixtures/fake-crun standing in for crun. Covers the request loop, stdio relay, flow
//! control, stdin EOF, exit events and their ordering after CLOSE, reconnects, shutdown;
//! terminals, exec, resize, ps, stats, update and OOM events.

use kata_agent::frame::{self, Frame};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

struct Host {
    dir: PathBuf,
    listener: UnixListener,
    agent: Child,
    writer: UnixStream,
    frames: Receiver<Option<Frame>>,
    /// Frames received while waiting for something else.
    backlog: VecDeque<Frame>,
    next_id: u32,
}

fn fake_crun() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-crun")
}

fn hello(window: u32, max_payload: u32) -> Frame {
    Frame::Hello(
        format!(r#"{{"version":1,"maxPayload":{},"window":{}}}"#, max_payload, window).into_bytes(),
    )
}

impl Host {
    fn start(name: &str) -> Host {
        Host::start_with(name, 262144, 65536)
    }

    fn start_with(name: &str, window: u32, max_payload: u32) -> Host {
        let dir = std::env::temp_dir().join(format!("kata-agent-it-{}-{}", std::process::id(), name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("fake")).expect("mkdir");
        let sock = dir.join("agent.sock");
        let listener = UnixListener::bind(&sock).expect("bind");
        let log = std::fs::File::create(dir.join("agent.log")).expect("log");
        let agent = Command::new(env!("CARGO_BIN_EXE_kata-agent"))
            .arg("--transport")
            .arg(format!("unix:{}", sock.display()))
            .arg("--bundle-dir")
            .arg(dir.join("bundles"))
            .arg("--cgroup-root")
            .arg(dir.join("cgroup"))
            .arg("--debug")
            .env("KATA_AGENT_CRUN", fake_crun())
            .env("FAKE_CRUN_DIR", dir.join("fake"))
            .env("FAKE_CRUN_HELPER", std::env::current_exe().expect("test binary"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn agent");
        let (writer, frames) = accept(&listener);
        let mut h = Host { dir, listener, agent, writer, frames, backlog: VecDeque::new(), next_id: 1 };
        h.handshake(window, max_payload);
        h
    }

    fn handshake(&mut self, window: u32, max_payload: u32) {
        self.send(&hello(window, max_payload));
        match self.next_frame(T) {
            Some(Frame::Hello(p)) => assert_eq!(
                String::from_utf8(p).expect("utf-8"),
                r#"{"version":1,"maxPayload":65536,"window":262144}"#
            ),
            other => panic!("expected HELLO, got {:?}\n{}", other, self.log()),
        }
    }

    /// Waits for the agent to connect again (after a dropped connection).
    fn reconnect(&mut self) {
        let (writer, frames) = accept(&self.listener);
        self.writer = writer;
        self.frames = frames;
        self.backlog.clear();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("fake/calls")).unwrap_or_default()
    }

    fn script(&self, id: &str, body: &str) {
        std::fs::write(self.dir.join("fake").join(format!("{}.sh", id)), body).expect("script");
    }

    fn send(&mut self, f: &Frame) {
        let bytes = frame::encode(f).expect("encode");
        self.writer.write_all(&bytes).expect("write to agent");
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to agent");
    }

    /// Next frame from the agent; None on timeout; panics on EOF.
    fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        if let Some(f) = self.backlog.pop_front() {
            return Some(f);
        }
        match self.frames.recv_timeout(timeout) {
            Ok(Some(f)) => Some(f),
            Ok(None) => panic!("agent closed the connection\n{}", self.log()),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("reader gone\n{}", self.log()),
        }
    }

    /// True if the agent closes the connection within `timeout` (frames before that are
    /// discarded).
    fn wait_eof(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// Sends a request and waits for its response; other frames go to the backlog.
    fn request(&mut self, req: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let m = json!({"kind": "req", "id": id, "req": req});
        self.send(&Frame::Msg(serde_json::to_vec(&m).expect("json")));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut kept = Vec::new();
        let res = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = match self.frames.recv_timeout(left) {
                Ok(Some(f)) => f,
                Ok(None) => panic!("agent closed the connection during request {}\n{}", m, self.log()),
                Err(_) => panic!("no response to {}\n{}", m, self.log()),
            };
            if let Frame::Msg(p) = &f {
                let v: Value = serde_json::from_slice(p).expect("agent MSG is JSON");
                if v["kind"] == "res" && v["id"] == id {
                    break v;
                }
            }
            kept.push(f);
        };
        self.backlog.extend(kept);
        res
    }

    fn ok(&mut self, req: Value) -> Value {
        let r = self.request(req.clone());
        assert!(r.get("err").is_none(), "{} failed: {}\n{}", req, r, self.log());
        r["ok"].clone()
    }

    fn err_code(&mut self, req: Value) -> String {
        let r = self.request(req.clone());
        match r["err"]["code"].as_str() {
            Some(c) => c.to_string(),
            None => panic!("{} did not fail: {}", req, r),
        }
    }

    /// Collects frames until the exit event of container `id`'s init; returns them all (in
    /// order), the event last.
    fn until_exit(&mut self, id: &str, timeout: Duration) -> Vec<Frame> {
        self.until_event(timeout, |e| e["type"] == "exit" && e["containerId"] == id && e.get("execId").is_none())
    }

    /// Collects frames until the exit event of exec `exec_id` of container `id`.
    fn until_exec_exit(&mut self, id: &str, exec_id: &str, timeout: Duration) -> Vec<Frame> {
        self.until_event(timeout, |e| e["type"] == "exit" && e["containerId"] == id && e["execId"] == exec_id)
    }

    /// Collects frames until an event matching `pred`; returns them all, the event last.
    fn until_event(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Vec<Frame> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = match self.next_frame(left) {
                Some(f) => f,
                None => panic!("no matching event; got {:?}\n{}", got, self.log()),
            };
            let hit = matches!(&f, Frame::Msg(p) if event_of(p).map_or(false, |e| pred(&e)));
            got.push(f);
            if hit {
                return got;
            }
        }
    }

    /// Reads DATA of `stream` (other frames go to the backlog) until the bytes so far contain
    /// `want`; returns them.
    fn read_until(&mut self, stream: u32, want: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut kept = Vec::new();
        while !String::from_utf8_lossy(&got).contains(want) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left) {
                Some(Frame::Data { stream: s, data }) if s == stream => got.extend(data),
                Some(f) => kept.push(f),
                None => panic!(
                    "stream {}: no {:?} in {:?}\n{}",
                    stream,
                    want,
                    String::from_utf8_lossy(&got),
                    self.log()
                ),
            }
        }
        // Put the rest back in front, in order.
        for f in kept.into_iter().rev() {
            self.backlog.push_front(f);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    fn cgroup(&self) -> PathBuf {
        self.dir.join("cgroup/kata/c")
    }
}

/// The parent pid of `pid`, from /proc.
fn ppid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid)).ok()?;
    stat.get(stat.rfind(')')? + 1..)?.split_whitespace().nth(1)?.parse().ok()
}

impl Drop for Host {
    fn drop(&mut self) {
        // Container stand-ins the agent started (sleep etc.) may still run; the fake crun
        // records their pids. Pids are reused quickly (pid_max may be 32768): kill only those
        // that are still the agent's children (it is their subreaper), before the agent goes.
        let agent = self.agent.id() as i32;
        if let Ok(entries) = std::fs::read_dir(self.dir.join("fake/state")) {
            for e in entries.flatten() {
                if e.path().extension().map_or(false, |x| x == "pid") {
                    let pid = std::fs::read_to_string(e.path()).ok().and_then(|p| p.trim().parse::<i32>().ok());
                    if let Some(pid) = pid.filter(|p| *p > 1 && ppid_of(*p) == Some(agent)) {
                        // SAFETY (test): kill(2) takes plain integers.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
        let _ = self.agent.kill();
        let _ = self.agent.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn accept(listener: &UnixListener) -> (UnixStream, Receiver<Option<Frame>>) {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + T;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "agent did not connect");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {}", e),
        }
    };
    stream.set_nonblocking(false).expect("blocking");
    let mut reader = stream.try_clone().expect("clone");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || loop {
        match frame::read_frame(&mut reader) {
            Ok(Some(f)) => {
                if tx.send(Some(f)).is_err() {
                    return;
                }
            }
            Ok(None) | Err(_) => {
                let _ = tx.send(None);
                return;
            }
        }
    });
    (stream, rx)
}

fn event_of(payload: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    if v["kind"] == "event" {
        Some(v["event"].clone())
    } else {
        None
    }
}

fn exit_event(payload: &[u8]) -> Option<Value> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    if v["kind"] == "event" && v["event"]["type"] == "exit" {
        Some(v["event"].clone())
    } else {
        None
    }
}

fn spec(args: &[&str]) -> Value {
    // Keys deliberately not in alphabetical order: the bundle must keep the host's order.
    json!({"ociVersion":"1.0.2","root":{"path":"/run/kata/shared/rootfs"},"process":{"cwd":"/","args":args},"linux":{"cgroupsPath":"/kata/c"}})
}

fn data_of(frames: &[Frame], stream: u32) -> Vec<u8> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Data { stream: s, data } if *s == stream => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn position(frames: &[Frame], pred: impl Fn(&Frame) -> bool) -> Option<usize> {
    frames.iter().position(pred)
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {}", what);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn handshake_ping_list_and_request_errors() {
    let mut h = Host::start("basic");
    assert_eq!(h.ok(json!({"op":"ping"})), json!({}));
    assert_eq!(h.ok(json!({"op":"list"})), json!({"containers":[]}));
    assert_eq!(h.err_code(json!({"op":"start","containerId":"nope"})), "E_NOT_FOUND");
    assert_eq!(h.err_code(json!({"op":"signal","containerId":"nope","signal":9,"all":false})), "E_NOT_FOUND");
    assert_eq!(h.err_code(json!({"op":"signal","containerId":"nope","signal":65,"all":false})), "E_BAD_REQUEST");
    assert_eq!(h.err_code(json!({"op":"frobnicate"})), "E_BAD_REQUEST");
    assert_eq!(h.err_code(json!({"op":"start"})), "E_BAD_REQUEST");
    let bad_ids = ["a/b", "..", "", &"x".repeat(129)];
    for (i, bad) in bad_ids.iter().enumerate() {
        let s = 100 + i as u32;
        assert_eq!(
            h.err_code(json!({"op":"create","containerId":bad,"spec":spec(&["true"]),"stdio":{"stdin":null,"stdout":s,"stderr":null}})),
            "E_BAD_REQUEST",
            "{:?}",
            bad
        );
    }
    // Stream id 0 and a stream named twice are invalid.
    assert_eq!(
        h.err_code(json!({"op":"create","containerId":"c","spec":spec(&["true"]),"stdio":{"stdin":0,"stdout":null,"stderr":null}})),
        "E_BAD_REQUEST"
    );
    assert_eq!(
        h.err_code(json!({"op":"create","containerId":"c","spec":spec(&["true"]),"stdio":{"stdin":null,"stdout":7,"stderr":7}})),
        "E_BAD_REQUEST"
    );
    // CREDIT/CLOSE for unknown streams and DATA for an unknown stream are ignored.
    h.send(&Frame::Credit { stream: 99, credit: 5 });
    h.send(&Frame::Close { stream: 99 });
    h.send(&Frame::Data { stream: 99, data: b"x".to_vec() });
    assert_eq!(h.ok(json!({"op":"ping"})), json!({}));
}

#[test]
fn stdio_relay_stdin_eof_and_close_before_exit() {
    let mut h = Host::start("relay");
    h.script("c1", "cat\necho err >&2\nexit 3\n");
    let sp = spec(&["sh", "-c", "cat"]);
    let r = h.ok(json!({"op":"create","containerId":"c1","spec":sp,"stdio":{"stdin":1,"stdout":2,"stderr":3}}));
    let pid = r["pid"].as_i64().expect("pid");
    assert!(pid > 1);
    // The bundle holds the spec as given (same keys, same order).
    let written = std::fs::read_to_string(h.dir.join("bundles/c1/config.json")).expect("config.json");
    assert_eq!(written, serde_json::to_string(&sp).expect("json"));
    assert_eq!(
        h.ok(json!({"op":"list"})),
        json!({"containers":[{"containerId":"c1","pid":pid,"status":"created"}]})
    );
    // stdin sent before start is buffered, not lost.
    h.send(&Frame::Data { stream: 1, data: b"hello\n".to_vec() });
    assert_eq!(h.ok(json!({"op":"start","containerId":"c1"})), json!({}));
    assert_eq!(h.err_code(json!({"op":"start","containerId":"c1"})), "E_BAD_STATE");
    h.send(&Frame::Data { stream: 1, data: b"world\n".to_vec() });
    h.send(&Frame::Close { stream: 1 });
    let frames = h.until_exit("c1", T);
    assert_eq!(data_of(&frames, 2), b"hello\nworld\n");
    assert_eq!(data_of(&frames, 3), b"err\n");
    let credited: u32 = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Credit { stream: 1, credit } => Some(*credit),
            _ => None,
        })
        .sum();
    assert_eq!(credited, 12, "CREDIT for every stdin byte written");
    let close2 = position(&frames, |f| *f == Frame::Close { stream: 2 }).expect("CLOSE 2");
    let close3 = position(&frames, |f| *f == Frame::Close { stream: 3 }).expect("CLOSE 3");
    let exit = frames.len() - 1;
    assert!(close2 < exit && close3 < exit, "CLOSE before exit: {:?}", frames);
    for (i, f) in frames.iter().enumerate() {
        if let Frame::Data { stream, .. } = f {
            let c = if *stream == 2 { close2 } else { close3 };
            assert!(i < c, "DATA after CLOSE on stream {}", stream);
        }
    }
    match &frames[exit] {
        Frame::Msg(p) => {
            let ev = exit_event(p).expect("exit event");
            assert_eq!(ev, json!({"type":"exit","containerId":"c1","pid":pid,"code":3,"signal":null}));
        }
        other => panic!("{:?}", other),
    }
    assert_eq!(
        h.ok(json!({"op":"list"})),
        json!({"containers":[{"containerId":"c1","pid":pid,"status":"stopped"}]})
    );
    assert_eq!(h.err_code(json!({"op":"signal","containerId":"c1","signal":9,"all":false})), "E_BAD_STATE");
    assert_eq!(h.err_code(json!({"op":"start","containerId":"c1"})), "E_BAD_STATE");
    assert_eq!(
        h.err_code(json!({"op":"create","containerId":"c1","spec":spec(&["true"]),"stdio":{"stdin":null,"stdout":null,"stderr":null}})),
        "E_EXISTS"
    );
    let calls = || std::fs::read_to_string(h.dir.join("fake/calls")).unwrap_or_default();
    wait_for("crun delete -f c1", T, || calls().contains("delete -f c1"));
    let c = h.calls();
    let create_line = c.lines().next().expect("a call");
    let bundle = h.dir.join("bundles/c1");
    assert_eq!(
        create_line,
        format!(
            "--log=file:{b}/crun.log create --bundle {b} --pid-file {b}/pid c1",
            b = bundle.display()
        )
    );
    assert!(c.contains("start c1"));
}

/// Only requests that fail validation: a valid one would change the test machine's network.
#[test]
fn network_request_errors_are_e_network() {
    let mut h = Host::start("network");
    let iface = json!({"name":"eth0","mac":"02:42:ac:11:00:02","mtu":1500,"addresses":[]});
    let mut bad_mac = iface.clone();
    bad_mac["mac"] = json!("zz");
    let r = h.request(json!({"op":"network","interfaces":[bad_mac],"routes":[]}));
    assert_eq!(
        r["err"],
        json!({"code":"E_NETWORK","message":"interfaces[0].mac: \"zz\" is not a MAC address (six hex pairs separated by ':')"})
    );
    let r = h.request(json!({"op":"network","interfaces":[iface]}));
    assert_eq!(r["err"], json!({"code":"E_NETWORK","message":"routes: missing"}));
    let r = h.request(json!({"op":"network","interfaces":[iface],"routes":[{"family":"inet","dest":"default","gateway":"172.17.0.1","device":"eth9"}]}));
    assert_eq!(r["err"]["message"], "routes[0].device: \"eth9\" is not the name of one of interfaces");
    assert_eq!(h.ok(json!({"op":"ping"})), json!({}));
}

#[test]
fn signal_reports_the_terminating_signal() {
    let mut h = Host::start("signal");
    h.script("c2", "exec sleep 30\n");
    let r = h.ok(json!({"op":"create","containerId":"c2","spec":spec(&["sleep","30"]),"stdio":{"stdin":null,"stdout":null,"stderr":null}}));
    let pid = r["pid"].clone();
    h.ok(json!({"op":"start","containerId":"c2"}));
    assert_eq!(h.ok(json!({"op":"list"}))["containers"][0]["status"], "running");
    h.ok(json!({"op":"signal","containerId":"c2","signal":15,"all":true}));
    let frames = h.until_exit("c2", T);
    match frames.last() {
        Some(Frame::Msg(p)) => assert_eq!(
            exit_event(p).expect("exit"),
            json!({"type":"exit","containerId":"c2","pid":pid,"code":null,"signal":15})
        ),
        other => panic!("{:?}", other),
    }
    assert!(h.calls().contains("kill --all c2 15"));
    assert_eq!(h.err_code(json!({"op":"signal","containerId":"c2","signal":9,"all":false})), "E_BAD_STATE");
}

#[test]
fn container_killed_before_start_is_reported() {
    let mut h = Host::start("prestart");
    h.script("c5", "exit 0\n");
    let r = h.ok(json!({"op":"create","containerId":"c5","spec":spec(&["true"]),"stdio":{"stdin":null,"stdout":4,"stderr":null}}));
    h.ok(json!({"op":"signal","containerId":"c5","signal":9,"all":false}));
    let frames = h.until_exit("c5", T);
    assert!(frames.contains(&Frame::Close { stream: 4 }));
    match frames.last() {
        Some(Frame::Msg(p)) => {
            let ev = exit_event(p).expect("exit");
            assert_eq!(ev["signal"], 9);
            assert_eq!(ev["pid"], r["pid"]);
        }
        other => panic!("{:?}", other),
    }
}

#[test]
fn create_failure_is_e_crun_with_crun_message_and_cleans_up() {
    let mut h = Host::start("fail");
    h.script("c3", "exit 0\n");
    std::fs::write(h.dir.join("fake/c3.fail"), "boom: invalid config file\n").expect("fail file");
    let r = h.request(json!({"op":"create","containerId":"c3","spec":spec(&["true"]),"stdio":{"stdin":1,"stdout":2,"stderr":3}}));
    assert_eq!(r["err"]["code"], "E_CRUN", "{}", r);
    assert_eq!(r["err"]["message"], "boom: invalid config file");
    assert!(!h.dir.join("bundles/c3").exists(), "bundle removed");
    assert_eq!(h.ok(json!({"op":"list"})), json!({"containers":[]}));
    assert!(h.calls().contains("delete -f c3"));
    // Stream ids are never reused on a connection.
    std::fs::remove_file(h.dir.join("fake/c3.fail")).expect("rm");
    assert_eq!(
        h.err_code(json!({"op":"create","containerId":"c3","spec":spec(&["true"]),"stdio":{"stdin":null,"stdout":2,"stderr":null}})),
        "E_BAD_REQUEST"
    );
    h.ok(json!({"op":"create","containerId":"c3","spec":spec(&["true"]),"stdio":{"stdin":null,"stdout":5,"stderr":null}}));
}

#[test]
fn output_never_exceeds_the_hosts_window() {
    let mut h = Host::start_with("window", 1000, 300);
    h.script("c4", "head -c 5000 /dev/zero | tr '\\0' x\nexit 0\n");
    h.ok(json!({"op":"create","containerId":"c4","spec":spec(&["x"]),"stdio":{"stdin":null,"stdout":2,"stderr":null}}));
    h.ok(json!({"op":"start","containerId":"c4"}));
    let mut got = 0usize;
    let mut credit_given = 1000usize;
    let mut frames = Vec::new();
    let deadline = Instant::now() + T;
    while got < 5000 {
        assert!(Instant::now() < deadline, "only {} bytes arrived\n{}", got, h.log());
        match h.next_frame(Duration::from_millis(300)) {
            Some(Frame::Data { stream: 2, data }) => {
                assert!(data.len() <= 300, "DATA larger than maxPayload");
                assert!(data.iter().all(|b| *b == b'x'));
                got += data.len();
                assert!(got <= credit_given, "sent {} bytes with {} credit", got, credit_given);
            }
            Some(f) => frames.push(f),
            None => {
                // Stalled: the agent must be exactly out of credit.
                assert_eq!(got, credit_given, "stalled with credit left");
                h.send(&Frame::Credit { stream: 2, credit: 1500 });
                credit_given += 1500;
            }
        }
    }
    assert_eq!(got, 5000);
    let rest = h.until_exit("c4", T);
    assert!(rest.contains(&Frame::Close { stream: 2 }));
    assert!(!rest.iter().any(|f| matches!(f, Frame::Data { .. })));
}

#[test]
fn stdin_respects_credit_and_overrun_is_a_protocol_error() {
    let mut h = Host::start("stdin");
    // Counts its stdin: 300000 bytes need more than one window, so CREDIT must flow.
    h.script("c6", "wc -c\n");
    h.ok(json!({"op":"create","containerId":"c6","spec":spec(&["wc"]),"stdio":{"stdin":1,"stdout":2,"stderr":null}}));
    h.ok(json!({"op":"start","containerId":"c6"}));
    let total = 300_000usize;
    let mut sent = 0usize;
    let mut window = 262_144usize;
    let mut other = Vec::new();
    while sent < total {
        if window == 0 {
            match h.next_frame(T) {
                Some(Frame::Credit { stream: 1, credit }) => window += credit as usize,
                Some(f) => other.push(f),
                None => panic!("no CREDIT after {} bytes\n{}", sent, h.log()),
            }
            continue;
        }
        let n = window.min(65536).min(total - sent);
        h.send(&Frame::Data { stream: 1, data: vec![b'a'; n] });
        sent += n;
        window -= n;
    }
    h.send(&Frame::Close { stream: 1 });
    let mut frames = other;
    frames.extend(h.until_exit("c6", T));
    assert_eq!(String::from_utf8(data_of(&frames, 2)).expect("utf8").trim(), "300000");

    // A process that never reads: the pipe takes 64 KiB, so exactly that much is credited.
    h.script("c7", "exec sleep 30\n");
    h.ok(json!({"op":"create","containerId":"c7","spec":spec(&["sleep"]),"stdio":{"stdin":10,"stdout":null,"stderr":null}}));
    h.ok(json!({"op":"start","containerId":"c7"}));
    for _ in 0..4 {
        h.send(&Frame::Data { stream: 10, data: vec![b'b'; 65536] });
    }
    let deadline = Instant::now() + T;
    loop {
        assert!(Instant::now() < deadline, "no CREDIT for the first 64 KiB");
        if let Some(Frame::Credit { stream: 10, credit }) = h.next_frame(Duration::from_millis(200)) {
            assert_eq!(credit, 65536);
            break;
        }
    }
    h.send(&Frame::Data { stream: 10, data: vec![b'b'; 65536] });
    // Window used up: one more byte is an overrun, and the agent drops the connection...
    h.send(&Frame::Data { stream: 10, data: vec![b'b'; 1] });
    assert!(h.wait_eof(T), "agent kept the connection after an overrun\n{}", h.log());
    assert!(h.log().contains("protocol error"));
    // ...then waits for the host again; a new connection starts with a new handshake.
    h.reconnect();
    h.handshake(262144, 65536);
    assert_eq!(h.ok(json!({"op":"list"}))["containers"][1]["status"], "running");
}

#[test]
fn bad_frames_drop_the_connection_and_the_agent_reconnects() {
    let mut h = Host::start("badframe");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test/fixtures/frames");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bad-") && n.ends_with(".hex"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            h.reconnect();
            h.handshake(262144, 65536);
        }
        assert_eq!(h.ok(json!({"op":"ping"})), json!({}));
        let bytes = frame::from_hex(&std::fs::read_to_string(dir.join(name)).expect("read")).expect("hex");
        h.send_raw(&bytes);
        // bad-len-short is only a partial header: more bytes complete it (the agent may
        // already have hung up, so this write may fail).
        let _ = h.writer.write_all(&[0u8; 16]);
        assert!(h.wait_eof(T), "{}: connection not dropped\n{}", name, h.log());
    }
    // Anything but HELLO first is a protocol error too.
    h.reconnect();
    let ping = json!({"kind":"req","id":1,"req":{"op":"ping"}});
    h.send(&Frame::Msg(serde_json::to_vec(&ping).expect("json")));
    assert!(h.wait_eof(T), "MSG before HELLO accepted");
    // A MSG that is not a request envelope, too.
    h.reconnect();
    h.handshake(262144, 65536);
    h.send(&Frame::Msg(b"[1,2,3]".to_vec()));
    assert!(h.wait_eof(T), "non-envelope MSG accepted");
    h.reconnect();
    h.handshake(262144, 65536);
    assert_eq!(h.ok(json!({"op":"ping"})), json!({}));
}

/// Hostile host, seeded (kata_agent::testrng; FUZZ_SEED replays, FUZZ_CASES scales): noise the
/// protocol allows (DATA for unknown streams, CREDIT and CLOSE for any stream, requests with
/// mangled bodies) never ends the session; every violation (garbage, invalid UTF-8 or JSON,
/// DATA on stream 0, a second HELLO) drops only that connection; the agent serves the next.
#[test]
fn hostile_host_sessions_never_take_the_agent_down() {
    use kata_agent::testrng::{cases, Rng};
    let mut h = Host::start("hostile");
    let mut r = Rng::from_env(41);
    let rounds = cases(40);
    let (mut noise, mut violations) = (0u64, 0u64);
    for _ in 0..rounds {
        for _ in 0..r.below(25) {
            noise += 1;
            match r.below(4) {
                0 => {
                    let stream = 1000 + r.below(1_000_000) as u32;
                    let max = if r.chance(10) { 65536 } else { 100 };
                    let n = 1 + r.below(max) as usize;
                    let data = r.bytes(n);
                    h.send(&Frame::Data { stream, data });
                }
                1 => {
                    let stream = 1 + r.below(u64::from(u32::MAX) - 1) as u32;
                    let credit = 1 + r.below(u64::from(u32::MAX) - 1) as u32;
                    h.send(&Frame::Credit { stream, credit });
                }
                2 => {
                    let stream = 1 + r.below(u64::from(u32::MAX) - 1) as u32;
                    h.send(&Frame::Close { stream });
                }
                _ => {
                    let op = *r.pick(&["start", "signal", "ps", "stats", "resize", "bogus", "update"]);
                    let cid = r.pick(&[json!("nope"), json!("../x"), json!(""), json!(5), json!(null), json!("x".repeat(300))]).clone();
                    let res = h.request(json!({"op": op, "containerId": cid, "signal": r.below(100), "rows": -1, "resources": 3}));
                    assert!(res.get("err").is_some(), "{} with {} did not fail: {}", op, cid, res);
                }
            }
        }
        assert_eq!(h.ok(json!({"op":"ping"})), json!({}), "noise ended the session\n{}", h.log());
        if r.chance(50) {
            violations += 1;
            let bytes = match r.below(5) {
                0 => {
                    let n = r.below(30) as usize;
                    let mut b = vec![0xffu8];
                    b.extend(r.bytes(n));
                    b
                }
                1 => frame::encode(&Frame::Msg(b"{\"kind\":\"req\",\"id\":1,\"req\":{\"op\":\"ping\"}\xff}".to_vec())).expect("enc"),
                2 => frame::encode(&Frame::Msg(b"{\"kind\":\"req\",\"id\":".to_vec())).expect("enc"),
                3 => vec![0, 0, 0, 6, frame::TYPE_DATA, 0, 0, 0, 0, 7],
                _ => frame::encode(&hello(262144, 65536)).expect("enc"),
            };
            h.send_raw(&bytes);
            let _ = h.writer.write_all(&[0u8; 16]);
            assert!(h.wait_eof(T), "violation {:?} not refused\n{}", bytes, h.log());
            h.reconnect();
            h.handshake(262144, 65536);
        }
    }
    assert!(h.agent.try_wait().expect("try_wait").is_none(), "the agent exited\n{}", h.log());
    assert_eq!(h.ok(json!({"op":"list"})), json!({"containers": []}));
    eprintln!("hostile host: {} rounds, {} noise frames, {} violations", rounds, noise, violations);
}

#[test]
fn leftover_holder_of_stdout_delays_exit_by_at_most_two_seconds() {
    let mut h = Host::start("leftover");
    // The background sleep keeps stdout open after the init exits.
    h.script("c8", "sleep 20 &\necho hi\nexit 0\n");
    h.ok(json!({"op":"create","containerId":"c8","spec":spec(&["x"]),"stdio":{"stdin":null,"stdout":2,"stderr":null}}));
    let t0 = Instant::now();
    h.ok(json!({"op":"start","containerId":"c8"}));
    let frames = h.until_exit("c8", T);
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(1800) && took < Duration::from_secs(6), "took {:?}", took);
    assert_eq!(data_of(&frames, 2), b"hi\n");
    let close = position(&frames, |f| *f == Frame::Close { stream: 2 }).expect("CLOSE");
    assert!(close < frames.len() - 1);
    // Event exit code 0.
    if let Some(Frame::Msg(p)) = frames.last() {
        assert_eq!(exit_event(p).expect("exit")["code"], 0);
    }
}

#[test]
fn exit_event_waits_for_a_host_when_none_is_connected() {
    let mut h = Host::start("pending");
    h.script("c9", "read x\nexit 4\n");
    h.ok(json!({"op":"create","containerId":"c9","spec":spec(&["x"]),"stdio":{"stdin":1,"stdout":null,"stderr":null}}));
    h.ok(json!({"op":"start","containerId":"c9"}));
    // The host goes away: the agent closes the container's stdin, the script's `read` ends.
    let _ = h.writer.shutdown(std::net::Shutdown::Both);
    h.reconnect();
    h.handshake(262144, 65536);
    let frames = h.until_exit("c9", T);
    if let Some(Frame::Msg(p)) = frames.last() {
        assert_eq!(exit_event(p).expect("exit")["code"], 4);
    }
}

#[test]
fn shutdown_answers_then_exits() {
    let mut h = Host::start("shutdown");
    h.script("c10", "exec sleep 30\n");
    let r = h.ok(json!({"op":"create","containerId":"c10","spec":spec(&["x"]),"stdio":{"stdin":null,"stdout":null,"stderr":null}}));
    h.ok(json!({"op":"start","containerId":"c10"}));
    assert_eq!(h.ok(json!({"op":"shutdown"})), json!({}));
    let deadline = Instant::now() + T;
    loop {
        if let Some(status) = h.agent.try_wait().expect("try_wait") {
            assert!(status.success(), "{:?}", status);
            break;
        }
        assert!(Instant::now() < deadline, "agent did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = r["pid"].as_i64().expect("pid");
    let alive = Path::new("/proc").join(pid.to_string()).join("stat");
    wait_for("container process killed", T, || {
        std::fs::read_to_string(&alive).map_or(true, |s| s.contains(") Z "))
    });
}

#[test]
fn exit_event_never_precedes_the_start_response() {
    let mut h = Host::start("order");
    for i in 0..5 {
        let id = format!("q{}", i);
        h.script(&id, "exit 7\n");
        h.ok(json!({"op":"create","containerId":id,"spec":spec(&["x"]),"stdio":{"stdin":null,"stdout":null,"stderr":null}}));
        h.ok(json!({"op":"start","containerId":id}));
        let early = h.backlog.iter().any(|f| matches!(f, Frame::Msg(p) if exit_event(p).is_some()));
        assert!(!early, "exit event arrived before the start response");
        let frames = h.until_exit(&id, T);
        if let Some(Frame::Msg(p)) = frames.last() {
            assert_eq!(exit_event(p).expect("exit")["code"], 7);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// terminals, exec, resize, ps, stats, update, OOM

/// Not a test: tests/fixtures/fake-crun runs this binary as `--exact fake_console_helper` with
/// FAKE_CONSOLE_SOCKET set, to do what crun does with --console-socket (a shell cannot). It
/// opens a pty, starts `sh -c "$FAKE_CONSOLE_CMD"` on the slave as a session leader with it as
/// controlling terminal, writes that pid to FAKE_CONSOLE_PIDFILE and sends the master over the
/// socket with SCM_RIGHTS. Without the variable it does nothing.
#[test]
fn fake_console_helper() {
    use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let sock = match std::env::var_os("FAKE_CONSOLE_SOCKET") {
        Some(s) => PathBuf::from(s),
        None => return,
    };
    let cmd = std::env::var("FAKE_CONSOLE_CMD").expect("FAKE_CONSOLE_CMD");
    let pidfile = PathBuf::from(std::env::var_os("FAKE_CONSOLE_PIDFILE").expect("FAKE_CONSOLE_PIDFILE"));
    let (mut m, mut s) = (-1, -1);
    // SAFETY (test helper): openpty writes two descriptors into the two ints; the other
    // arguments may be null.
    let r = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty succeeded, so both are fresh descriptors owned by nothing else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup"));
    let mut c = Command::new("sh");
    c.arg("-c").arg(&cmd).stdin(dup(&slave)).stdout(dup(&slave)).stderr(dup(&slave));
    // SAFETY: between fork and exec the closure only calls setsid and ioctl, which are
    // async-signal-safe; fd 0 is the slave at that point.
    unsafe {
        c.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = c.spawn().expect("spawn the process on the pty");
    drop(c);
    drop(slave);
    std::fs::write(&pidfile, child.id().to_string()).expect("pid file");
    let conn = UnixStream::connect(&sock).expect("connect console socket");
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr() as *mut libc::c_void, iov_len: 1 };
    let mut control = [0u64; 4];
    // SAFETY (test helper): msghdr is plain data; the pointers set below outlive sendmsg and
    // the CMSG macros stay within `control`, which has room for one int.
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = libc::CMSG_SPACE(4) as _;
        let h = libc::CMSG_FIRSTHDR(&msg);
        (*h).cmsg_level = libc::SOL_SOCKET;
        (*h).cmsg_type = libc::SCM_RIGHTS;
        (*h).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(h) as *mut i32, master.as_raw_fd());
        libc::sendmsg(conn.as_raw_fd(), &msg, 0)
    };
    assert_eq!(sent, 1, "sendmsg: {}", std::io::Error::last_os_error());
    // The child is left running: it is the container's process (re-parented to the agent).
    std::mem::forget(child);
}

/// Not a test: tests/fixtures/fake-crun runs this binary as `--exact fake_exec_helper` with
/// FAKE_EXEC_CMD set, to start an exec'd process the way crun does (a shell cannot): the
/// process's stdio arrive as fds 4, 5 and 6 (this binary's own 0-2 are /dev/null, its test
/// harness prints there); it runs `sh -c "$FAKE_EXEC_CMD"` with them as 0-2 and crun's fd 3
/// inherited, writes the pid to FAKE_EXEC_PIDFILE and exits without waiting, so the process is
/// re-parented to the agent at once, as crun's is, whether or not it has already ended. Without
/// the variable it does nothing.
#[test]
fn fake_exec_helper() {
    use std::os::unix::io::{FromRawFd, OwnedFd};
    let cmd = match std::env::var("FAKE_EXEC_CMD") {
        Ok(c) => c,
        Err(_) => return,
    };
    let pidfile = PathBuf::from(std::env::var_os("FAKE_EXEC_PIDFILE").expect("FAKE_EXEC_PIDFILE"));
    let stdio = |fd: i32| {
        // SAFETY (test helper): fake-crun opened fds 4-6 for us and nothing else in this process
        // owns them; close-on-exec keeps them out of the process (it gets them as 0-2).
        unsafe {
            assert_eq!(libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC), 0, "fd {}: {}", fd, std::io::Error::last_os_error());
            Stdio::from(OwnedFd::from_raw_fd(fd))
        }
    };
    let child = Command::new("sh").arg("-c").arg(&cmd).stdin(stdio(4)).stdout(stdio(5)).stderr(stdio(6)).spawn().expect("spawn the process");
    std::fs::write(&pidfile, child.id().to_string()).expect("pid file");
    // Never waited for: the agent (its subreaper) reaps it.
    std::mem::forget(child);
}

fn is_close(f: &Frame, stream: u32) -> bool {
    *f == Frame::Close { stream }
}

fn last_event(frames: &[Frame]) -> Value {
    match frames.last() {
        Some(Frame::Msg(p)) => event_of(p).expect("an event"),
        other => panic!("{:?}", other),
    }
}

/// Creates and starts `id` running `script` with no stdio.
fn running(h: &mut Host, id: &str, script: &str) -> i64 {
    h.script(id, script);
    let r = h.ok(json!({"op":"create","containerId":id,"spec":spec(&["x"]),"stdio":{"stdin":null,"stdout":null,"stderr":null}}));
    h.ok(json!({"op":"start","containerId":id}));
    r["pid"].as_i64().expect("pid")
}

#[test]
fn terminal_create_relays_through_the_pty_and_resizes() {
    let mut h = Host::start("tty");
    // stderr must be null for a terminal process.
    let mut sp = spec(&["sh"]);
    sp["process"]["terminal"] = json!(true);
    sp["process"]["consoleSize"] = json!({"height":30,"width":100});
    assert_eq!(
        h.err_code(json!({"op":"create","containerId":"t1","spec":sp,"stdio":{"stdin":1,"stdout":2,"stderr":3}})),
        "E_BAD_REQUEST"
    );
    h.script("t1", "stty size\nread line\nstty size\necho \"got $line\" >&2\nexit 5\n");
    let r = h.ok(json!({"op":"create","containerId":"t1","spec":sp,"stdio":{"stdin":4,"stdout":5,"stderr":null}}));
    let pid = r["pid"].as_i64().expect("pid");
    let calls = h.calls();
    let line = calls.lines().find(|l| l.contains(" create ")).expect("create call");
    assert!(line.contains(" --console-socket ") && line.ends_with(" t1"), "{}", line);
    // Resize before start works; the stand-in for crun does not set consoleSize, so the first
    // `stty size` shows the agent applied it.
    h.ok(json!({"op":"start","containerId":"t1"}));
    let out = h.read_until(5, "30 100", T);
    assert!(out.contains("30 100\r\n"), "{:?}", out);
    assert_eq!(h.ok(json!({"op":"resize","containerId":"t1","rows":40,"cols":120})), json!({}));
    h.send(&Frame::Data { stream: 4, data: b"hello\n".to_vec() });
    let frames = h.until_exit("t1", T);
    // The terminal echoes the input and turns \n into \r\n; the process's stderr is the
    // terminal too.
    let rest = String::from_utf8_lossy(&data_of(&frames, 5)).into_owned();
    assert!(rest.contains("hello\r\n"), "{:?}", rest);
    assert!(rest.contains("40 120\r\n"), "{:?}", rest);
    assert!(rest.ends_with("got hello\r\n"), "{:?}", rest);
    let close = position(&frames, |f| is_close(f, 5)).expect("CLOSE of the terminal stream");
    assert!(close < frames.len() - 1);
    assert_eq!(last_event(&frames), json!({"type":"exit","containerId":"t1","pid":pid,"code":5,"signal":null}));
    assert_eq!(h.err_code(json!({"op":"resize","containerId":"t1","rows":1,"cols":1})), "E_BAD_STATE");

    // Resize errors.
    running(&mut h, "p1", "exec sleep 30\n");
    assert_eq!(h.err_code(json!({"op":"resize","containerId":"p1","rows":1,"cols":1})), "E_BAD_STATE");
    assert_eq!(h.err_code(json!({"op":"resize","containerId":"nope","rows":1,"cols":1})), "E_NOT_FOUND");
    assert_eq!(h.err_code(json!({"op":"resize","containerId":"p1","execId":"nope","rows":1,"cols":1})), "E_NOT_FOUND");
    assert_eq!(h.err_code(json!({"op":"resize","containerId":"p1","rows":70000,"cols":1})), "E_BAD_REQUEST");

    // A terminal nobody reads (stdout null) does not block the process.
    let mut sp = spec(&["sh"]);
    sp["process"]["terminal"] = json!(true);
    h.script("t2", "head -c 200000 /dev/zero\nexit 0\n");
    h.ok(json!({"op":"create","containerId":"t2","spec":sp,"stdio":{"stdin":null,"stdout":null,"stderr":null}}));
    h.ok(json!({"op":"start","containerId":"t2"}));
    assert_eq!(last_event(&h.until_exit("t2", T))["code"], 0);
}

#[test]
fn exec_with_pipes_reports_output_then_its_exit() {
    let mut h = Host::start("exec");
    let cpid = running(&mut h, "c1", "exec sleep 30\n");
    h.script("c1.exec-e1", "cat\necho err >&2\nexit 7\n");
    let process = json!({"terminal":false,"user":{"uid":0,"gid":0},"args":["sh","-c","cat"],"env":["PATH=/bin"],"cwd":"/"});
    let r = h.ok(json!({"op":"exec","containerId":"c1","execId":"e1","process":process,"stdio":{"stdin":11,"stdout":12,"stderr":13}}));
    let pid = r["pid"].as_i64().expect("pid");
    assert!(pid > 1 && pid != cpid);
    // list shows containers only.
    assert_eq!(
        h.ok(json!({"op":"list"})),
        json!({"containers":[{"containerId":"c1","pid":cpid,"status":"running"}]})
    );
    // The process file holds the process as sent; crun's argv is the documented one.
    let b = h.dir.join("bundles/c1");
    let written = std::fs::read_to_string(h.dir.join("fake/state/c1.exec-e1.json")).expect("process.json");
    assert_eq!(written, serde_json::to_string(&process).expect("json"));
    let call = h.calls().lines().find(|l| l.contains(" exec ")).expect("exec call").to_string();
    assert_eq!(
        call,
        format!(
            "--log=file:{d}/crun.log exec --process {d}/process.json --detach --pid-file {d}/pid c1",
            d = b.join("exec/e1").display()
        )
    );
    h.send(&Frame::Data { stream: 11, data: b"abc\n".to_vec() });
    h.send(&Frame::Close { stream: 11 });
    let frames = h.until_exec_exit("c1", "e1", T);
    assert_eq!(data_of(&frames, 12), b"abc\n");
    assert_eq!(data_of(&frames, 13), b"err\n");
    let exit = frames.len() - 1;
    let c12 = position(&frames, |f| is_close(f, 12)).expect("CLOSE 12");
    let c13 = position(&frames, |f| is_close(f, 13)).expect("CLOSE 13");
    assert!(c12 < exit && c13 < exit);
    assert_eq!(
        last_event(&frames),
        json!({"type":"exit","containerId":"c1","execId":"e1","pid":pid,"code":7,"signal":null})
    );
    wait_for("exec dir removed", T, || !b.join("exec/e1").exists());
    // The id is free again once the exit was reported: it is no longer known.
    assert_eq!(h.err_code(json!({"op":"signal","containerId":"c1","execId":"e1","signal":9})), "E_NOT_FOUND");

    // Live exec ids are unique per container; signal with execId hits only that process
    // (`all` ignored); the id can be reused after its exit.
    h.script("c1.exec-e2", "exec sleep 30\n");
    let sleeper = json!({"args":["sleep","30"],"cwd":"/"});
    let r = h.ok(json!({"op":"exec","containerId":"c1","execId":"e2","process":sleeper,"stdio":{"stdin":null,"stdout":null,"stderr":null}}));
    assert_eq!(
        h.err_code(json!({"op":"exec","containerId":"c1","execId":"e2","process":sleeper,"stdio":{"stdin":null,"stdout":null,"stderr":null}})),
        "E_EXISTS"
    );
    h.ok(json!({"op":"signal","containerId":"c1","execId":"e2","signal":15,"all":true}));
    let frames = h.until_exec_exit("c1", "e2", T);
    assert_eq!(
        last_event(&frames),
        json!({"type":"exit","containerId":"c1","execId":"e2","pid":r["pid"],"code":null,"signal":15})
    );
    assert_eq!(h.ok(json!({"op":"list"}))["containers"][0]["status"], "running");
    h.ok(json!({"op":"exec","containerId":"c1","execId":"e2","process":sleeper,"stdio":{"stdin":null,"stdout":null,"stderr":null}}));

    // Request errors.
    let nul = json!({"stdin":null,"stdout":null,"stderr":null});
    assert_eq!(h.err_code(json!({"op":"exec","containerId":"zz","execId":"e","process":sleeper,"stdio":nul})), "E_NOT_FOUND");
    assert_eq!(h.err_code(json!({"op":"exec","containerId":"c1","execId":"a/b","process":sleeper,"stdio":nul})), "E_BAD_REQUEST");
    assert_eq!(h.err_code(json!({"op":"exec","containerId":"c1","execId":"..","process":sleeper,"stdio":nul})), "E_BAD_REQUEST");
    assert_eq!(h.err_code(json!({"op":"exec","containerId":"c1","execId":"e","process":{"args":[]},"stdio":nul})), "E_BAD_REQUEST");
    assert_eq!(
        h.err_code(json!({"op":"exec","containerId":"c1","execId":"e","process":{"args":["sh"],"terminal":true},"stdio":{"stdin":null,"stdout":30,"stderr":31}})),
        "E_BAD_REQUEST"
    );
    assert_eq!(h.err_code(json!({"op":"signal","containerId":"c1","execId":"nope","signal":9})), "E_NOT_FOUND");
    assert_eq!(h.err_code(json!({"op":"signal","containerId":"zz","execId":"e2","signal":9})), "E_NOT_FOUND");

    // crun's failure comes back as E_CRUN with its words; the streams and the id are freed.
    std::fs::write(
        h.dir.join("fake/c1.exec-bad.fail"),
        "executable file `nope` not found in $PATH: No such file or directory\n",
    )
    .expect("fail file");
    let r = h.request(json!({"op":"exec","containerId":"c1","execId":"bad","process":{"args":["nope"],"cwd":"/"},"stdio":{"stdin":40,"stdout":41,"stderr":42}}));
    assert_eq!(r["err"]["code"], "E_CRUN", "{}", r);
    assert_eq!(r["err"]["message"], "executable file `nope` not found in $PATH: No such file or directory");
    assert!(!b.join("exec/bad").exists());
    std::fs::remove_file(h.dir.join("fake/c1.exec-bad.fail")).expect("rm");
    h.script("c1.exec-bad", "exit 0\n");
    // Same exec id works now; its stream ids were used, so they are refused.
    assert_eq!(
        h.err_code(json!({"op":"exec","containerId":"c1","execId":"bad","process":sleeper,"stdio":{"stdin":null,"stdout":41,"stderr":null}})),
        "E_BAD_REQUEST"
    );
    h.ok(json!({"op":"exec","containerId":"c1","execId":"bad","process":sleeper,"stdio":{"stdin":null,"stdout":43,"stderr":null}}));
    let frames = h.until_exec_exit("c1", "bad", T);
    assert_eq!(last_event(&frames)["code"], 0);

    // Exec in a container that has stopped: E_BAD_STATE.
    h.ok(json!({"op":"signal","containerId":"c1","signal":9,"all":false}));
    h.until_exit("c1", T);
    assert_eq!(h.err_code(json!({"op":"exec","containerId":"c1","execId":"late","process":sleeper,"stdio":nul})), "E_BAD_STATE");
}

/// Processes that end at once, before crun (here its stand-in) has even exited: every exit is
/// reported, with its code. They are re-parented to the agent as crun's are (crun's intermediate
/// process exits; crun never waits for the process), and reaped by the agent before the exec's
/// `watch`: the status waits in the reaper's unclaimed table. (A stand-in that let a shell own
/// the process lost some: dash reaps a finished background job itself.)
#[test]
fn exec_of_processes_that_exit_at_once_reports_every_exit() {
    const N: usize = 500;
    let mut h = Host::start("quick");
    running(&mut h, "c1", "exec sleep 300\n");
    let mut pids = std::collections::HashMap::new();
    for i in 0..N {
        let eid = format!("q{}", i);
        h.script(&format!("c1.exec-{}", eid), &format!("exit {}\n", i % 100));
        let r = h.ok(json!({"op":"exec","containerId":"c1","execId":eid,"process":{"args":["x"]},"stdio":{"stdin":null,"stdout":null,"stderr":null}}));
        pids.insert(eid, r["pid"].as_i64().expect("pid"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut exits = std::collections::HashMap::new();
    while exits.len() < N {
        let left = deadline.saturating_duration_since(Instant::now());
        let f = match h.next_frame(left) {
            Some(f) => f,
            None => {
                let missing: Vec<_> = pids.keys().filter(|k| !exits.contains_key(*k)).take(10).collect();
                panic!("{} of {} exits reported; missing e.g. {:?}\n{}", exits.len(), N, missing, h.log());
            }
        };
        if let Frame::Msg(p) = &f {
            if let Some(e) = exit_event(p) {
                if let Some(eid) = e["execId"].as_str() {
                    exits.insert(eid.to_string(), e);
                }
            }
        }
    }
    // The race this covers did happen: processes ended before the agent watched them.
    assert!(h.log().contains("reaper: reaped unregistered pid"), "no process ended before its watch");
    for (eid, e) in &exits {
        let i: i64 = eid[1..].parse().expect("index");
        assert_eq!((e["pid"].as_i64(), e["code"].as_i64()), (pids.get(eid).copied(), Some(i % 100)), "{}", eid);
    }
}

#[test]
fn exec_answers_once_the_process_has_execd() {
    let mut h = Host::start("execsync");
    running(&mut h, "c1", "exec sleep 30\n");
    h.script("c1.exec-slow", "exit 0\n");
    std::fs::write(h.dir.join("fake/c1.exec-slow.hold"), "0.8").expect("hold");
    let t = Instant::now();
    h.ok(json!({"op":"exec","containerId":"c1","execId":"slow","process":{"args":["x"]},"stdio":{"stdin":null,"stdout":null,"stderr":null}}));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(750), "answered after {:?}, before the process exec'd", took);
    let frames = h.until_exec_exit("c1", "slow", T);
    assert_eq!(last_event(&frames)["code"], 0);
}

#[test]
fn exec_with_terminal_and_resize() {
    let mut h = Host::start("exectty");
    running(&mut h, "c1", "exec sleep 30\n");
    h.script("c1.exec-sh", "stty size\nread line\nstty size\necho \"got $line\"\nexit 3\n");
    let process = json!({"terminal":true,"consoleSize":{"height":25,"width":81},"args":["sh"],"cwd":"/"});
    let r = h.ok(json!({"op":"exec","containerId":"c1","execId":"sh","process":process,"stdio":{"stdin":1,"stdout":2,"stderr":null}}));
    let call = h.calls().lines().find(|l| l.contains(" exec ")).expect("exec call").to_string();
    assert!(call.contains(" --detach --pid-file ") && call.contains(" --console-socket ") && call.ends_with(" c1"), "{}", call);
    let out = h.read_until(2, "25 81", T);
    assert!(out.contains("25 81\r\n"), "{:?}", out);
    h.ok(json!({"op":"resize","containerId":"c1","execId":"sh","rows":50,"cols":132}));
    // The container's init has no terminal.
    assert_eq!(h.err_code(json!({"op":"resize","containerId":"c1","rows":5,"cols":5})), "E_BAD_STATE");
    h.send(&Frame::Data { stream: 1, data: b"x\n".to_vec() });
    let frames = h.until_exec_exit("c1", "sh", T);
    let rest = String::from_utf8_lossy(&data_of(&frames, 2)).into_owned();
    assert!(rest.contains("50 132\r\n") && rest.ends_with("got x\r\n"), "{:?}", rest);
    assert!(position(&frames, |f| is_close(f, 2)).expect("CLOSE") < frames.len() - 1);
    assert_eq!(
        last_event(&frames),
        json!({"type":"exit","containerId":"c1","execId":"sh","pid":r["pid"],"code":3,"signal":null})
    );
    // A process without a terminal cannot be resized.
    h.script("c1.exec-plain", "exec sleep 30\n");
    h.ok(json!({"op":"exec","containerId":"c1","execId":"plain","process":{"args":["sleep"]},"stdio":{"stdin":null,"stdout":null,"stderr":null}}));
    assert_eq!(h.err_code(json!({"op":"resize","containerId":"c1","execId":"plain","rows":5,"cols":5})), "E_BAD_STATE");
}

#[test]
fn exec_exits_are_reported_before_the_containers() {
    let mut h = Host::start("execorder");
    h.script("c1", "read x\nexit 0\n");
    h.ok(json!({"op":"create","containerId":"c1","spec":spec(&["x"]),"stdio":{"stdin":1,"stdout":null,"stderr":null}}));
    h.ok(json!({"op":"start","containerId":"c1"}));
    h.script("c1.exec-e1", "sleep 0.7\nexit 1\n");
    h.ok(json!({"op":"exec","containerId":"c1","execId":"e1","process":{"args":["sleep"]},"stdio":{"stdin":null,"stdout":2,"stderr":null}}));
    // The init ends first; its exit waits (a bounded while) for the exec's.
    h.send(&Frame::Close { stream: 1 });
    let frames = h.until_exit("c1", T);
    let exec_exit = position(&frames, |f| {
        matches!(f, Frame::Msg(p) if event_of(p).map_or(false, |e| e["execId"] == "e1"))
    });
    assert!(exec_exit.is_some(), "exec exit not before the container's: {:?}", frames);
}

#[test]
fn ps_and_stats_read_the_containers_cgroup() {
    let mut h = Host::start("ps");
    // linux.cgroupsPath /kata/c (spec()), cgroup root <dir>/cgroup.
    let cg = h.cgroup();
    std::fs::create_dir_all(cg.join("sub")).expect("mkdir");
    let pid = running(&mut h, "c1", "exec sleep 30\n");
    h.script("c1.exec-e1", "exec sleep 31\n");
    let epid = h.ok(json!({"op":"exec","containerId":"c1","execId":"e1","process":{"args":["sleep"]},"stdio":{"stdin":null,"stdout":null,"stderr":null}}))["pid"]
        .as_i64()
        .expect("pid");
    // The processes must have exec'd their final command before we look.
    wait_for("sleep 30 running", T, || {
        std::fs::read(format!("/proc/{}/cmdline", pid)).map_or(false, |c| c.starts_with(b"sleep\x0030"))
    });
    wait_for("sleep 31 running", T, || {
        std::fs::read(format!("/proc/{}/cmdline", epid)).map_or(false, |c| c.starts_with(b"sleep\x0031"))
    });
    std::fs::write(cg.join("cgroup.procs"), format!("{}\n", pid)).expect("procs");
    // A nested cgroup, and a pid that is gone by the time ps reads /proc.
    std::fs::write(cg.join("sub/cgroup.procs"), format!("{}\n2147483646\n", epid)).expect("procs");
    let agent = h.agent.id() as i64;
    // SAFETY (test): getuid takes no arguments and cannot fail.
    let uid = unsafe { libc::getuid() } as i64;
    let mut want = vec![
        json!({"pid":pid,"ppid":agent,"uid":uid,"cmd":"sleep 30"}),
        json!({"pid":epid,"ppid":agent,"uid":uid,"cmd":"sleep 31"}),
    ];
    want.sort_by_key(|v| v["pid"].as_i64());
    assert_eq!(h.ok(json!({"op":"ps","containerId":"c1"})), json!({"processes":want}));
    assert_eq!(h.err_code(json!({"op":"ps","containerId":"nope"})), "E_NOT_FOUND");

    // stats: cgroup v2 files; "max" and missing files are null, other missing ones 0.
    std::fs::write(cg.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n").expect("w");
    std::fs::write(cg.join("memory.current"), "1048576\n").expect("w");
    std::fs::write(cg.join("memory.max"), "max\n").expect("w");
    std::fs::write(cg.join("memory.swap.current"), "0\n").expect("w");
    std::fs::write(cg.join("pids.current"), "2\n").expect("w");
    std::fs::write(cg.join("pids.max"), "64\n").expect("w");
    std::fs::write(cg.join("memory.stat"), "anon 4096\nfile 8192\nkernel_stack 16384\n").expect("w");
    assert_eq!(
        h.ok(json!({"op":"stats","containerId":"c1"})),
        json!({"cpuUsageUsec":1500,"cpuUserUsec":1000,"cpuSystemUsec":500,"memoryCurrent":1048576,
            "memoryMax":null,"memorySwapCurrent":0,"pidsCurrent":2,"pidsMax":64,"oomKills":0,
            "memoryStat":{"anon":4096,"file":8192,"kernel_stack":16384}})
    );
    assert_eq!(h.err_code(json!({"op":"stats","containerId":"nope"})), "E_NOT_FOUND");

    // Once the container has stopped: stats is E_BAD_STATE; ps of a removed cgroup is empty.
    h.ok(json!({"op":"signal","containerId":"c1","signal":9,"all":false}));
    h.until_exit("c1", T);
    assert_eq!(h.err_code(json!({"op":"stats","containerId":"c1"})), "E_BAD_STATE");
    std::fs::remove_dir_all(h.dir.join("cgroup/kata")).expect("rm cgroup");
    assert_eq!(h.ok(json!({"op":"ps","containerId":"c1"})), json!({"processes":[]}));

    // A cgroupsPath that leaves the cgroup root is refused.
    let mut sp = spec(&["x"]);
    sp["linux"]["cgroupsPath"] = json!("/kata/../../etc");
    h.script("c2", "exit 0\n");
    assert_eq!(
        h.err_code(json!({"op":"create","containerId":"c2","spec":sp,"stdio":{"stdin":null,"stdout":null,"stderr":null}})),
        "E_BAD_REQUEST"
    );
}

#[test]
fn update_runs_crun_update_with_the_resources() {
    let mut h = Host::start("update");
    running(&mut h, "c1", "exec sleep 30\n");
    let res = json!({"memory":{"limit":268435456},"pids":{"limit":100},"cpu":{"quota":50000,"period":100000}});
    assert_eq!(h.ok(json!({"op":"update","containerId":"c1","resources":res})), json!({}));
    let got = std::fs::read_to_string(h.dir.join("fake/state/c1.resources.json")).expect("resources");
    assert_eq!(got, serde_json::to_string(&res).expect("json"));
    let call = h.calls().lines().find(|l| l.starts_with("update ")).expect("update call").to_string();
    let file = call.split_whitespace().nth(2).expect("file").to_string();
    assert_eq!(call, format!("update --resources {} c1", file));
    assert!(!Path::new(&file).exists(), "resources file removed");
    std::fs::write(h.dir.join("fake/c1.update.fail"), "updating cgroup: Invalid argument\n").expect("fail");
    let r = h.request(json!({"op":"update","containerId":"c1","resources":{"pids":{"limit":-5}}}));
    assert_eq!(r["err"], json!({"code":"E_CRUN","message":"updating cgroup: Invalid argument"}));
    assert_eq!(h.err_code(json!({"op":"update","containerId":"c1","resources":[1]})), "E_BAD_REQUEST");
    assert_eq!(h.err_code(json!({"op":"update","containerId":"nope","resources":{}})), "E_NOT_FOUND");
    h.ok(json!({"op":"signal","containerId":"c1","signal":9,"all":false}));
    h.until_exit("c1", T);
    assert_eq!(h.err_code(json!({"op":"update","containerId":"c1","resources":{}})), "E_BAD_STATE");
}

#[test]
fn oom_kills_are_reported_as_events() {
    let mut h = Host::start("oom");
    let cg = h.cgroup();
    std::fs::create_dir_all(&cg).expect("mkdir");
    std::fs::write(cg.join("memory.events"), "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n").expect("w");
    h.script("c1", "read x\nexit 0\n");
    h.ok(json!({"op":"create","containerId":"c1","spec":spec(&["x"]),"stdio":{"stdin":1,"stdout":null,"stderr":null}}));
    h.ok(json!({"op":"start","containerId":"c1"}));
    let is_oom = |e: &Value| e["type"] == "oom";
    std::fs::write(cg.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").expect("w");
    let frames = h.until_event(T, is_oom);
    assert_eq!(last_event(&frames), json!({"type":"oom","containerId":"c1"}));
    // Two more kills between polls: one event.
    std::fs::write(cg.join("memory.events"), "oom 3\noom_kill 3\n").expect("w");
    h.until_event(T, is_oom);
    let quiet = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < quiet {
        if let Some(Frame::Msg(p)) = h.next_frame(Duration::from_millis(100)) {
            panic!("unexpected {}", String::from_utf8_lossy(&p));
        }
    }
    // A kill right before the init ends is reported before the exit.
    std::fs::write(cg.join("memory.events"), "oom 4\noom_kill 4\n").expect("w");
    h.send(&Frame::Close { stream: 1 });
    let frames = h.until_exit("c1", T);
    let oom = position(&frames, |f| matches!(f, Frame::Msg(p) if event_of(p).map_or(false, |e| is_oom(&e))));
    assert!(oom.is_some(), "no oom event before the exit: {:?}", frames);
}
