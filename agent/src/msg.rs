//! Control messages carried in HELLO and MSG frames (docs/protocol.md, "Control messages").

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Protocol version spoken by this agent.
pub const PROTOCOL_VERSION: u32 = 1;
/// Bytes a peer may send on each of our receive streams before it needs CREDIT.
pub const DEFAULT_WINDOW: u32 = 262144;

/// HELLO payload, sent by both sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    pub version: u32,
    pub max_payload: u32,
    pub window: u32,
}

impl Hello {
    pub fn ours() -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            max_payload: crate::frame::MAX_PAYLOAD as u32,
            window: DEFAULT_WINDOW,
        }
    }
}

/// Everything that travels in a MSG frame, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Message {
    Req { id: u32, req: Request },
    Res(Response),
    Event { event: Event },
}

/// Requests, host → agent, tagged by `op`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    Ping,
    #[serde(rename_all = "camelCase")]
    Create {
        container_id: String,
        /// The OCI config for the guest, written to the bundle as given.
        spec: Value,
        stdio: StdioStreams,
    },
    #[serde(rename_all = "camelCase")]
    Start { container_id: String },
    #[serde(rename_all = "camelCase")]
    Signal {
        container_id: String,
        signal: i64,
        #[serde(default)]
        all: bool,
        /// Signal only this exec'd process (`all` is then ignored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
    },
    List,
    Shutdown,
    /// Runs another process in a running container (`crun exec`).
    #[serde(rename_all = "camelCase")]
    Exec {
        container_id: String,
        exec_id: String,
        /// An OCI process object, written to a file for `crun exec --process`.
        process: Value,
        stdio: StdioStreams,
    },
    /// Sets the window size of the terminal of the container's init or of one exec.
    #[serde(rename_all = "camelCase")]
    Resize {
        container_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
        rows: u16,
        cols: u16,
    },
    /// The processes in the container's cgroup.
    #[serde(rename_all = "camelCase")]
    Ps { container_id: String },
    /// `crun update --resources`.
    #[serde(rename_all = "camelCase")]
    Update {
        container_id: String,
        /// An OCI `linux.resources` object.
        resources: Value,
    },
    /// Resource usage from the container's cgroup.
    #[serde(rename_all = "camelCase")]
    Stats { container_id: String },
    /// Configures the guest's NICs and routes. Both fields are checked field by field by
    /// `net::parse` (so every failure, a missing or mistyped field too, is E_NETWORK naming
    /// the field); absent = null, which it refuses.
    Network {
        #[serde(default)]
        interfaces: Value,
        #[serde(default)]
        routes: Value,
    },
}

impl Request {
    pub fn op(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Create { .. } => "create",
            Request::Start { .. } => "start",
            Request::Signal { .. } => "signal",
            Request::List => "list",
            Request::Shutdown => "shutdown",
            Request::Exec { .. } => "exec",
            Request::Resize { .. } => "resize",
            Request::Ps { .. } => "ps",
            Request::Update { .. } => "update",
            Request::Stats { .. } => "stats",
            Request::Network { .. } => "network",
        }
    }
}

/// Stream ids for a process's stdio; `None` (JSON null) = /dev/null.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioStreams {
    #[serde(default)]
    pub stdin: Option<u32>,
    #[serde(default)]
    pub stdout: Option<u32>,
    #[serde(default)]
    pub stderr: Option<u32>,
}

/// A response: exactly one of `ok` and `err` is present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<WireError>,
}

impl Response {
    pub fn from_result(id: u32, r: Result<Value, AgentError>) -> Response {
        match r {
            Ok(v) => Response { id, ok: Some(v), err: None },
            Err(e) => Response {
                id,
                ok: None,
                err: Some(WireError { code: e.code, message: e.message }),
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: ErrorCode,
    pub message: String,
}

/// Events, agent → host, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// A container's init (no `execId`) or an exec'd process (`execId`) ended.
    #[serde(rename_all = "camelCase")]
    Exit {
        container_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exec_id: Option<String>,
        pid: i32,
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The `oom_kill` counter of the container's cgroup went up.
    #[serde(rename_all = "camelCase")]
    Oom { container_id: String },
}

/// `ok` result of `create` and `exec`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateResult {
    pub pid: i32,
}

/// One entry of the `list` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInfo {
    pub container_id: String,
    pub pid: i32,
    pub status: ContainerStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResult {
    pub containers: Vec<ContainerInfo>,
}

/// One entry of the `ps` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub cmd: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PsResult {
    pub processes: Vec<ProcessInfo>,
}

/// `ok` result of `stats`. Counters the cgroup does not have read 0; limits that are `max`
/// (or missing) are `null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsResult {
    pub cpu_usage_usec: u64,
    pub cpu_user_usec: u64,
    pub cpu_system_usec: u64,
    pub memory_current: u64,
    pub memory_max: Option<u64>,
    pub memory_swap_current: Option<u64>,
    pub pids_current: u64,
    pub pids_max: Option<u64>,
    pub oom_kills: u64,
    /// Every key of memory.stat whose value is a number, in the file's order.
    pub memory_stat: serde_json::Map<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    Created,
    Running,
    Stopped,
}

/// Stable wire error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    #[serde(rename = "E_BAD_REQUEST")]
    BadRequest,
    #[serde(rename = "E_NOT_FOUND")]
    NotFound,
    #[serde(rename = "E_EXISTS")]
    Exists,
    #[serde(rename = "E_BAD_STATE")]
    BadState,
    #[serde(rename = "E_CRUN")]
    Crun,
    #[serde(rename = "E_INTERNAL")]
    Internal,
    #[serde(rename = "E_NETWORK")]
    Network,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "E_BAD_REQUEST",
            ErrorCode::NotFound => "E_NOT_FOUND",
            ErrorCode::Exists => "E_EXISTS",
            ErrorCode::BadState => "E_BAD_STATE",
            ErrorCode::Crun => "E_CRUN",
            ErrorCode::Internal => "E_INTERNAL",
            ErrorCode::Network => "E_NETWORK",
        }
    }
}

/// A request failure, carried to the host as `err`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentError {
    pub code: ErrorCode,
    pub message: String,
}

impl AgentError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AgentError {
        AgentError { code, message: message.into() }
    }
    pub fn bad_request(m: impl Into<String>) -> AgentError {
        AgentError::new(ErrorCode::BadRequest, m)
    }
    pub fn not_found(id: &str) -> AgentError {
        AgentError::new(ErrorCode::NotFound, format!("container {} does not exist", id))
    }
    pub fn exec_not_found(id: &str, exec_id: &str) -> AgentError {
        AgentError::new(
            ErrorCode::NotFound,
            format!("exec {} of container {} does not exist", exec_id, id),
        )
    }
    pub fn bad_state(m: impl Into<String>) -> AgentError {
        AgentError::new(ErrorCode::BadState, m)
    }
    pub fn internal(m: impl Into<String>) -> AgentError {
        AgentError::new(ErrorCode::Internal, m)
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for AgentError {}

/// What the agent makes of one MSG payload from the host.
#[derive(Debug)]
pub enum Incoming {
    /// A well-formed request.
    Request { id: u32, req: Request },
    /// A request envelope with a usable id whose body is invalid: answer E_BAD_REQUEST.
    BadRequest { id: u32, error: AgentError },
}

/// Decodes a MSG payload sent to the agent. Anything that is not a request envelope with a u32
/// `id` is a protocol error (`Err`); a bad body inside a good envelope is `BadRequest`.
pub fn decode_incoming(payload: &[u8]) -> Result<Incoming, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("MSG is not JSON: {}", e))?;
    let obj = v.as_object().ok_or("MSG is not a JSON object")?;
    match obj.get("kind").and_then(Value::as_str) {
        Some("req") => {}
        Some(k) => return Err(format!("unexpected message kind {:?} from host", k)),
        None => return Err("MSG without a string \"kind\"".to_string()),
    }
    let id = obj
        .get("id")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("request without a u32 \"id\"")?;
    let body = match obj.get("req") {
        Some(b) => b.clone(),
        None => {
            return Ok(Incoming::BadRequest {
                id,
                error: AgentError::bad_request("request has no \"req\" object"),
            })
        }
    };
    match serde_json::from_value::<Request>(body) {
        Ok(req) => Ok(Incoming::Request { id, req }),
        Err(e) => Ok(Incoming::BadRequest {
            id,
            error: AgentError::bad_request(format!("invalid request: {}", e)),
        }),
    }
}

/// Serialises an agent → host message. Serialising these types cannot fail (string keys only),
/// but the error is still returned rather than unwrapped.
pub fn encode_message(m: &Message) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(m)
}

/// `^[A-Za-z0-9_.+-]{1,128}$`
pub fn valid_container_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{self, Frame};
    use std::path::PathBuf;

    fn fixture_text(name: &str) -> String {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test/fixtures/frames");
        let hex = std::fs::read_to_string(dir.join(format!("{}.hex", name))).expect("fixture");
        let bytes = frame::from_hex(&hex).expect("hex");
        match frame::decode(&bytes).expect("valid").expect("complete").0 {
            Frame::Msg(p) | Frame::Hello(p) => String::from_utf8(p).expect("utf-8"),
            other => panic!("{} is not MSG/HELLO: {:?}", name, other),
        }
    }

    #[test]
    fn every_msg_fixture_round_trips_byte_for_byte() {
        for name in ["req-create", "req-signal", "req-signal-exec", "res-ok", "res-err", "event-exit", "event-exit-exec"] {
            let text = fixture_text(name);
            let m: Message = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {}", name, e));
            let again = String::from_utf8(encode_message(&m).expect("encode")).expect("utf-8");
            assert_eq!(again, text, "{}", name);
        }
    }

    #[test]
    fn fixture_contents() {
        let m: Message = serde_json::from_str(&fixture_text("req-create")).expect("decode");
        match m {
            Message::Req { id: 1, req: Request::Create { container_id, spec, stdio } } => {
                assert_eq!(container_id, "c1");
                assert_eq!(spec["root"]["path"], "/run/kata/shared/rootfs");
                assert_eq!(stdio, StdioStreams { stdin: None, stdout: Some(2), stderr: Some(3) });
            }
            other => panic!("unexpected {:?}", other),
        }
        let m: Message = serde_json::from_str(&fixture_text("req-signal")).expect("decode");
        assert_eq!(
            m,
            Message::Req {
                id: u32::MAX,
                req: Request::Signal { container_id: "c1".into(), signal: 9, all: true, exec_id: None }
            }
        );
        let m: Message = serde_json::from_str(&fixture_text("req-signal-exec")).expect("decode");
        assert_eq!(
            m,
            Message::Req {
                id: 5,
                req: Request::Signal {
                    container_id: "c1".into(),
                    signal: 15,
                    all: false,
                    exec_id: Some("e1".into())
                }
            }
        );
        let m: Message = serde_json::from_str(&fixture_text("event-exit-exec")).expect("decode");
        assert_eq!(
            m,
            Message::Event {
                event: Event::Exit {
                    container_id: "c1".into(),
                    exec_id: Some("e1".into()),
                    pid: 42,
                    code: Some(0),
                    signal: None
                }
            }
        );
        let m: Message = serde_json::from_str(&fixture_text("event-exit")).expect("decode");
        assert_eq!(
            m,
            Message::Event {
                event: Event::Exit { container_id: "c1".into(), exec_id: None, pid: 17, code: None, signal: Some(9) }
            }
        );
        let m: Message = serde_json::from_str(&fixture_text("res-err")).expect("decode");
        match m {
            Message::Res(Response { id: 2, ok: None, err: Some(e) }) => {
                assert_eq!(e.code, ErrorCode::NotFound)
            }
            other => panic!("unexpected {:?}", other),
        }
        let h: Hello = serde_json::from_str(&fixture_text("hello")).expect("hello");
        assert_eq!(h, Hello::ours());
        assert_eq!(serde_json::to_string(&Hello::ours()).expect("enc"), fixture_text("hello"));
    }

    #[test]
    fn our_responses_have_the_documented_shape() {
        let ok = Message::Res(Response::from_result(
            1,
            Ok(serde_json::to_value(CreateResult { pid: 17 }).expect("value")),
        ));
        assert_eq!(encode_message(&ok).expect("enc"), fixture_text("res-ok").into_bytes());
        let err = Message::Res(Response::from_result(2, Err(AgentError::not_found("c9"))));
        assert_eq!(encode_message(&err).expect("enc"), fixture_text("res-err").into_bytes());
        let list = ListResult {
            containers: vec![ContainerInfo {
                container_id: "c1".into(),
                pid: 5,
                status: ContainerStatus::Running,
            }],
        };
        assert_eq!(
            serde_json::to_string(&list).expect("enc"),
            r#"{"containers":[{"containerId":"c1","pid":5,"status":"running"}]}"#
        );
        let oom = Message::Event { event: Event::Oom { container_id: "c1".into() } };
        assert_eq!(
            String::from_utf8(encode_message(&oom).expect("enc")).expect("utf8"),
            r#"{"kind":"event","event":{"type":"oom","containerId":"c1"}}"#
        );
        let ps = PsResult {
            processes: vec![ProcessInfo { pid: 7, ppid: 1, uid: 0, cmd: "sleep 10".into() }],
        };
        assert_eq!(
            serde_json::to_string(&ps).expect("enc"),
            r#"{"processes":[{"pid":7,"ppid":1,"uid":0,"cmd":"sleep 10"}]}"#
        );
        let net = Message::Res(Response::from_result(4, Err(AgentError::new(ErrorCode::Network, "routes: missing"))));
        assert_eq!(
            String::from_utf8(encode_message(&net).expect("enc")).expect("utf8"),
            r#"{"kind":"res","id":4,"err":{"code":"E_NETWORK","message":"routes: missing"}}"#
        );
        let empty = Message::Res(Response::from_result(3, Ok(serde_json::json!({}))));
        assert_eq!(
            String::from_utf8(encode_message(&empty).expect("enc")).expect("utf8"),
            r#"{"kind":"res","id":3,"ok":{}}"#
        );
    }

    #[test]
    fn incoming_requests() {
        match decode_incoming(br#"{"kind":"req","id":7,"req":{"op":"start","containerId":"c1"}}"#) {
            Ok(Incoming::Request { id: 7, req: Request::Start { container_id } }) => {
                assert_eq!(container_id, "c1")
            }
            other => panic!("{:?}", other),
        }
        for (text, want) in [
            (r#"{"kind":"req","id":1,"req":{"op":"ping"}}"#, Request::Ping),
            (r#"{"kind":"req","id":1,"req":{"op":"list"}}"#, Request::List),
            (r#"{"kind":"req","id":1,"req":{"op":"shutdown"}}"#, Request::Shutdown),
            (
                r#"{"kind":"req","id":1,"req":{"op":"signal","containerId":"x","signal":15}}"#,
                Request::Signal { container_id: "x".into(), signal: 15, all: false, exec_id: None },
            ),
            (
                r#"{"kind":"req","id":1,"req":{"op":"signal","containerId":"x","signal":15,"execId":"e"}}"#,
                Request::Signal { container_id: "x".into(), signal: 15, all: false, exec_id: Some("e".into()) },
            ),
            (
                r#"{"kind":"req","id":1,"req":{"op":"exec","containerId":"c","execId":"e","process":{"args":["sh"]},"stdio":{"stdin":1,"stdout":2,"stderr":null}}}"#,
                Request::Exec {
                    container_id: "c".into(),
                    exec_id: "e".into(),
                    process: serde_json::json!({"args":["sh"]}),
                    stdio: StdioStreams { stdin: Some(1), stdout: Some(2), stderr: None },
                },
            ),
            (
                r#"{"kind":"req","id":1,"req":{"op":"resize","containerId":"c","rows":24,"cols":80}}"#,
                Request::Resize { container_id: "c".into(), exec_id: None, rows: 24, cols: 80 },
            ),
            (
                r#"{"kind":"req","id":1,"req":{"op":"resize","containerId":"c","execId":"e","rows":0,"cols":65535}}"#,
                Request::Resize { container_id: "c".into(), exec_id: Some("e".into()), rows: 0, cols: 65535 },
            ),
            (r#"{"kind":"req","id":1,"req":{"op":"ps","containerId":"c"}}"#, Request::Ps { container_id: "c".into() }),
            (r#"{"kind":"req","id":1,"req":{"op":"stats","containerId":"c"}}"#, Request::Stats { container_id: "c".into() }),
            (
                r#"{"kind":"req","id":1,"req":{"op":"update","containerId":"c","resources":{"pids":{"limit":5}}}}"#,
                Request::Update { container_id: "c".into(), resources: serde_json::json!({"pids":{"limit":5}}) },
            ),
            (
                r#"{"kind":"req","id":1,"req":{"op":"network","interfaces":[{"name":"eth0"}],"routes":[]}}"#,
                Request::Network { interfaces: serde_json::json!([{"name":"eth0"}]), routes: serde_json::json!([]) },
            ),
            // Its fields are checked by net::parse, which answers E_NETWORK naming the field.
            (
                r#"{"kind":"req","id":1,"req":{"op":"network","interfaces":7}}"#,
                Request::Network { interfaces: serde_json::json!(7), routes: Value::Null },
            ),
        ] {
            match decode_incoming(text.as_bytes()) {
                Ok(Incoming::Request { req, .. }) => assert_eq!(req, want),
                other => panic!("{}: {:?}", text, other),
            }
        }
        // Good envelope, bad body: answered with E_BAD_REQUEST under the same id.
        for text in [
            r#"{"kind":"req","id":9,"req":{"op":"frobnicate"}}"#,
            r#"{"kind":"req","id":9,"req":{"op":"start"}}"#,
            r#"{"kind":"req","id":9,"req":{"op":"signal","containerId":"c","signal":"KILL"}}"#,
            r#"{"kind":"req","id":9}"#,
            r#"{"kind":"req","id":9,"req":{"op":"resize","containerId":"c","rows":65536,"cols":1}}"#,
            r#"{"kind":"req","id":9,"req":{"op":"resize","containerId":"c","rows":-1,"cols":1}}"#,
            r#"{"kind":"req","id":9,"req":{"op":"exec","containerId":"c","process":{},"stdio":{}}}"#,
            r#"{"kind":"req","id":9,"req":{"op":"signal","containerId":"c","signal":1,"execId":7}}"#,
            r#"{"kind":"req","id":9,"req":{"op":"update","containerId":"c"}}"#,
        ] {
            match decode_incoming(text.as_bytes()) {
                Ok(Incoming::BadRequest { id: 9, error }) => {
                    assert_eq!(error.code, ErrorCode::BadRequest)
                }
                other => panic!("{}: {:?}", text, other),
            }
        }
        // No usable envelope: protocol error.
        for text in [
            "not json",
            "[1,2]",
            r#"{"kind":"res","id":1,"ok":{}}"#,
            r#"{"kind":"req","id":-1,"req":{"op":"ping"}}"#,
            r#"{"kind":"req","id":4294967296,"req":{"op":"ping"}}"#,
            r#"{"id":1,"req":{"op":"ping"}}"#,
        ] {
            assert!(decode_incoming(text.as_bytes()).is_err(), "{}", text);
        }
    }

    #[test]
    fn container_ids() {
        for ok in ["c1", "a", "A-b_c.d+e", &"x".repeat(128)] {
            assert!(valid_container_id(ok), "{}", ok);
        }
        for bad in ["", "a/b", "..\u{e9}", "a b", "a\nb", &"x".repeat(129), "c1\0"] {
            assert!(!valid_container_id(bad), "{:?}", bad);
        }
    }

    /// Hostile input: mutated requests, random bytes, invalid UTF-8. decode_incoming never
    /// panics; bad UTF-8 or a broken envelope is Err (protocol error), a bad body BadRequest.
    #[test]
    fn property_decode_incoming_never_panics() {
        use crate::testrng::Rng;
        let mut r = Rng::from_env(21);
        let weird = |r: &mut Rng| -> serde_json::Value {
            match r.below(10) {
                0 => serde_json::Value::Null,
                1 => serde_json::json!(-1),
                2 => serde_json::json!(u64::MAX),
                3 => serde_json::json!(1.5),
                4 => serde_json::json!("../../etc/passwd"),
                5 => serde_json::json!("x".repeat(r.below(5000) as usize)),
                6 => serde_json::json!([]),
                7 => serde_json::json!({}),
                8 => serde_json::json!(true),
                _ => serde_json::json!(4294967296u64),
            }
        };
        let n = crate::testrng::cases(20_000);
        for _ in 0..n {
            let mut v = serde_json::json!({"kind": "req", "id": r.below(10), "req": {
                "op": *r.pick(&["ping", "start", "signal", "exec", "create", "resize", "ps", "network", "bogus"]),
                "containerId": "c1", "execId": "e1", "signal": 9, "all": false, "rows": 1, "cols": 1,
                "stdio": {"stdin": 1, "stdout": 2, "stderr": null}, "process": {"args": ["sh"]},
                "interfaces": [], "routes": []}});
            for _ in 0..r.below(4) {
                let target = if r.chance(60) { &mut v["req"] } else { &mut v };
                if let Some(o) = target.as_object_mut() {
                    let keys: Vec<String> = o.keys().cloned().collect();
                    if keys.is_empty() { continue; }
                    let k = r.pick(&keys).clone();
                    if r.chance(30) { o.remove(&k); } else { o.insert(k, weird(&mut r)); }
                }
            }
            let mut bytes = serde_json::to_vec(&v).expect("json");
            match r.below(4) {
                0 => {
                    let at = r.below(bytes.len() as u64) as usize;
                    bytes.insert(at, *r.pick(&[0xffu8, 0xc0, 0x80, 0xed]));
                    // either refused as JSON/UTF-8, or the byte landed in a way serde still rejects
                    if let Ok(Incoming::Request { .. }) = decode_incoming(&bytes) {
                        panic!("invalid UTF-8 accepted: {:?}", String::from_utf8_lossy(&bytes));
                    }
                }
                1 => bytes.truncate(r.below(bytes.len() as u64) as usize),
                2 => bytes = { let n = r.below(200) as usize; r.bytes(n) },
                _ => {}
            }
            let _ = decode_incoming(&bytes);
        }
        for deep in ["[".repeat(65536), format!("{}{}", "[".repeat(30000), "]".repeat(30000))] {
            assert!(decode_incoming(deep.as_bytes()).is_err());
        }
        eprintln!("msg property cases: {}", n);
    }
}
