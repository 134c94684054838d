//! Runs the real agent binary on the host, connected over a unix socket to a test "host", with
//! tests/fixtures/fake-crun standing in for crun. Covers the request loop, stdio relay, flow
//! control, stdin EOF, exit events and their ordering after CLOSE, reconnects, shutdown.

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
            .arg("--debug")
            .env("KATA_AGENT_CRUN", fake_crun())
            .env("FAKE_CRUN_DIR", dir.join("fake"))
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

    /// Collects frames until the exit event of `id`; returns them all (in order), the event last.
    fn until_exit(&mut self, id: &str, timeout: Duration) -> Vec<Frame> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = match self.next_frame(left) {
                Some(f) => f,
                None => panic!("no exit event for {}; got {:?}\n{}", id, got, self.log()),
            };
            let is_exit = matches!(&f, Frame::Msg(p) if exit_event(p).map_or(false, |e| e["containerId"] == id));
            got.push(f);
            if is_exit {
                return got;
            }
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.agent.kill();
        let _ = self.agent.wait();
        // Container stand-ins the agent started (sleep etc.) may still run; the fake crun
        // records their pids.
        if let Ok(entries) = std::fs::read_dir(self.dir.join("fake/state")) {
            for e in entries.flatten() {
                if e.path().extension().map_or(false, |x| x == "pid") {
                    if let Ok(pid) = std::fs::read_to_string(e.path()) {
                        let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
                    }
                }
            }
        }
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
