//! The agent proper: connection loop, request handlers, containers.
//!
//! Handlers follow decode → validate → do → map error to a wire code. Each request runs on its
//! own thread, so a slow `crun create` does not hold up `ping` or stdin relay.

use crate::config::{Config, ShutdownMode};
use crate::crun::{Crun, ProcessStdio};
use crate::frame::{self, Frame, FrameError};
use crate::msg::{
    self, AgentError, ContainerInfo, ContainerStatus, CreateResult, ErrorCode, Event, Hello,
    Incoming, ListResult, Request, Response,
};
use crate::reaper::{Reaper, Waiter};
use crate::session::{self, lock, OpenedStdio, OutStream, Session, SharedWriter, StreamRef};
use crate::sys::{self, ExitStatus};
use crate::transport::{Conn, Link};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufReader, Read};
use std::os::unix::io::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the exit report waits for stdout/stderr to reach end-of-file (protocol.md).
pub const EXIT_DRAIN: Duration = Duration::from_secs(2);
/// Exit events kept while no host is connected.
const MAX_PENDING_EVENTS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// `crun create` is running; not listed.
    Creating,
    Created,
    Running,
    Stopped,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Creating => "being created",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

struct Container {
    status: Status,
    pid: i32,
    exit: Option<ExitStatus>,
}

pub struct Agent {
    cfg: Config,
    crun: Crun,
    reaper: Arc<Reaper>,
    containers: Mutex<BTreeMap<String, Container>>,
    current: Mutex<Option<Arc<Session>>>,
    /// create/start/signal requests per container whose response is not sent yet: the exit
    /// event waits for them, so the host never sees a container exit before its create or
    /// start succeeded.
    inflight: Mutex<BTreeMap<String, u32>>,
    inflight_cv: Condvar,
    pending_events: Mutex<VecDeque<Event>>,
    next_gen: AtomicU64,
}

/// Why a connection ended.
enum End {
    /// The host went away (EOF or read error).
    Disconnected,
    /// The host broke the protocol.
    ProtocolError(String),
}

impl Agent {
    pub fn new(cfg: Config, reaper: Arc<Reaper>) -> Arc<Agent> {
        let crun = Crun::new(cfg.crun.clone(), Arc::clone(&reaper));
        Arc::new(Agent {
            cfg,
            crun,
            reaper,
            containers: Mutex::new(BTreeMap::new()),
            current: Mutex::new(None),
            inflight: Mutex::new(BTreeMap::new()),
            inflight_cv: Condvar::new(),
            pending_events: Mutex::new(VecDeque::new()),
            next_gen: AtomicU64::new(1),
        })
    }

    /// Serves host connections one after another, forever.
    pub fn serve(self: &Arc<Self>, mut link: Box<dyn Link>) {
        loop {
            match link.accept() {
                Ok(conn) => self.run_connection(conn),
                Err(e) => {
                    crate::error!("waiting for the host failed: {}", e);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn run_connection(self: &Arc<Self>, conn: Conn) {
        let Conn { reader, writer, closer, is_port, describe } = conn;
        crate::info!("host connected ({})", describe);
        let writer: SharedWriter = Arc::new(Mutex::new(writer));
        let mut reader = BufReader::with_capacity(frame::MAX_PAYLOAD * 2, reader);
        let end = self.connection_loop(&mut reader, &writer, is_port);
        if let Some(s) = lock(&self.current).take() {
            s.kill();
        }
        match end {
            End::Disconnected => crate::info!("host disconnected ({})", describe),
            End::ProtocolError(why) => {
                crate::error!("protocol error from host: {}; dropping the connection", why);
                closer();
                if is_port {
                    // We cannot hang up a serial port: discard until the host goes away.
                    let mut sink = [0u8; 4096];
                    loop {
                        match reader.read(&mut sink) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                    crate::info!("host disconnected ({})", describe);
                }
            }
        }
    }

    fn start_session(self: &Arc<Self>, writer: &SharedWriter, payload: &[u8]) -> Result<Arc<Session>, End> {
        let hello: Hello = serde_json::from_slice(payload)
            .map_err(|e| End::ProtocolError(format!("bad HELLO: {}", e)))?;
        if hello.max_payload == 0 || hello.window == 0 {
            return Err(End::ProtocolError(format!(
                "HELLO with maxPayload {} window {}",
                hello.max_payload, hello.window
            )));
        }
        if hello.version != msg::PROTOCOL_VERSION {
            crate::warn!(
                "host speaks protocol version {}, agent {}: answering HELLO, the host decides",
                hello.version,
                msg::PROTOCOL_VERSION
            );
        }
        let gen = self.next_gen.fetch_add(1, Ordering::SeqCst);
        let session = Session::new(gen, Arc::clone(writer), hello.clone());
        let ours = serde_json::to_vec(&Hello::ours())
            .map_err(|e| End::ProtocolError(format!("cannot encode HELLO: {}", e)))?;
        if session.send(&Frame::Hello(ours)).is_err() {
            return Err(End::Disconnected);
        }
        crate::info!(
            "session {}: handshake done (host version {}, maxPayload {}, window {})",
            gen,
            hello.version,
            hello.max_payload,
            hello.window
        );
        if let Some(old) = lock(&self.current).replace(Arc::clone(&session)) {
            old.kill();
        }
        self.flush_pending_events(&session);
        Ok(session)
    }

    fn connection_loop<R: Read>(
        self: &Arc<Self>,
        reader: &mut R,
        writer: &SharedWriter,
        is_port: bool,
    ) -> End {
        let read = |r: &mut R| -> Result<Frame, End> {
            match frame::read_frame(r) {
                Ok(Some(f)) => Ok(f),
                Ok(None) => Err(End::Disconnected),
                Err(FrameError::Io(e)) => {
                    crate::debug!("read from host: {}", e);
                    Err(End::Disconnected)
                }
                Err(FrameError::Truncated) => Err(End::Disconnected),
                Err(e) => Err(End::ProtocolError(e.to_string())),
            }
        };
        let mut session = match read(reader) {
            Ok(Frame::Hello(p)) => match self.start_session(writer, &p) {
                Ok(s) => s,
                Err(e) => return e,
            },
            Ok(f) => {
                return End::ProtocolError(format!("{} frame before HELLO", f.type_name()))
            }
            Err(e) => return e,
        };
        loop {
            let f = match read(reader) {
                Ok(f) => f,
                Err(e) => return e,
            };
            if !session.is_alive() && !matches!(f, Frame::Hello(_)) {
                if is_port {
                    continue; // a write failed: the host left; wait for the next HELLO
                }
                return End::Disconnected;
            }
            let r = match f {
                Frame::Hello(p) => {
                    if !is_port {
                        return End::ProtocolError("second HELLO on a connection".into());
                    }
                    // On a serial port a new host can arrive without an EOF in between.
                    crate::info!("new HELLO on the port: a new host session starts");
                    session.kill();
                    match self.start_session(writer, &p) {
                        Ok(s) => {
                            session = s;
                            Ok(())
                        }
                        Err(e) => return e,
                    }
                }
                Frame::Msg(p) => self.on_msg(&session, &p),
                Frame::Data { stream, data } => match session.stream(stream) {
                    Some(StreamRef::In(s)) => s.on_data(data).map_err(|e| format!("stream {}: {}", stream, e)),
                    Some(StreamRef::Out(_)) => {
                        Err(format!("DATA on stream {}, which flows guest → host", stream))
                    }
                    None => {
                        crate::debug!("discarding {} bytes for unknown stream {}", data.len(), stream);
                        Ok(())
                    }
                },
                Frame::Close { stream } => {
                    if let Some(StreamRef::In(s)) = session.stream(stream) {
                        s.close();
                    } else {
                        crate::debug!("ignoring CLOSE for stream {}", stream);
                    }
                    Ok(())
                }
                Frame::Credit { stream, credit } => {
                    if let Some(StreamRef::Out(s)) = session.stream(stream) {
                        s.add_credit(credit);
                    }
                    Ok(())
                }
            };
            if let Err(why) = r {
                session.kill();
                return End::ProtocolError(why);
            }
        }
    }

    fn on_msg(self: &Arc<Self>, session: &Arc<Session>, payload: &[u8]) -> Result<(), String> {
        crate::debug!("session {}: recv {}", session.gen, String::from_utf8_lossy(payload));
        let (id, req) = match msg::decode_incoming(payload)? {
            Incoming::Request { id, req } => (id, req),
            Incoming::BadRequest { id, error } => {
                crate::warn!("request {}: {}", id, error);
                let _ = session.send_response(Response::from_result(id, Err(error)));
                return Ok(());
            }
        };
        // Streams are registered before the reply thread starts, so stdin DATA sent right
        // after the create request is buffered rather than discarded.
        let stdio = match &req {
            Request::Create { stdio, .. } => {
                match session.open_stdio(stdio, msg::DEFAULT_WINDOW) {
                    Ok(o) => Some(o),
                    Err(e) => {
                        let _ = session.send_response(Response::from_result(id, Err(e)));
                        return Ok(());
                    }
                }
            }
            _ => None,
        };
        let agent = Arc::clone(self);
        let s = Arc::clone(session);
        let spawned = std::thread::Builder::new()
            .name(format!("req-{}", id))
            .spawn(move || agent.handle(s, id, req, stdio));
        if let Err(e) = spawned {
            crate::error!("request {}: cannot start a thread: {}", id, e);
            let _ = session.send_response(Response::from_result(
                id,
                Err(AgentError::internal(format!("cannot start a thread: {}", e))),
            ));
        }
        Ok(())
    }

    fn handle(self: Arc<Self>, session: Arc<Session>, id: u32, req: Request, stdio: Option<OpenedStdio>) {
        let op = req.op();
        let shutdown = matches!(req, Request::Shutdown);
        let gate = match &req {
            Request::Create { container_id, .. }
            | Request::Start { container_id }
            | Request::Signal { container_id, .. } => Some(container_id.clone()),
            _ => None,
        };
        if let Some(c) = &gate {
            *lock(&self.inflight).entry(c.clone()).or_insert(0) += 1;
        }
        let started = Instant::now();
        let agent = Arc::clone(&self);
        let sess = Arc::clone(&session);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            agent.dispatch(&sess, req, stdio)
        }))
        .unwrap_or_else(|_| Err(AgentError::internal(format!("{} handler panicked", op))));
        match &result {
            Ok(_) => crate::info!("request {} {}: ok ({} ms)", id, op, started.elapsed().as_millis()),
            Err(e) => crate::warn!("request {} {}: {}", id, op, e),
        }
        let _ = session.send_response(Response::from_result(id, result));
        if let Some(c) = gate {
            let mut g = lock(&self.inflight);
            if let Some(n) = g.get_mut(&c) {
                *n -= 1;
                if *n == 0 {
                    g.remove(&c);
                }
            }
            drop(g);
            self.inflight_cv.notify_all();
        }
        if shutdown {
            self.power_off();
        }
    }

    fn dispatch(
        self: &Arc<Self>,
        session: &Arc<Session>,
        req: Request,
        stdio: Option<OpenedStdio>,
    ) -> Result<Value, AgentError> {
        match req {
            Request::Ping => Ok(serde_json::json!({})),
            Request::Create { container_id, spec, .. } => {
                let stdio = stdio.ok_or_else(|| AgentError::internal("create without streams"))?;
                match self.create(&container_id, &spec, &stdio) {
                    Ok(r) => Ok(r),
                    Err(e) => {
                        session.abandon_stdio(&stdio);
                        Err(e)
                    }
                }
            }
            Request::Start { container_id } => self.start(&container_id),
            Request::Signal { container_id, signal, all } => self.signal(&container_id, signal, all),
            Request::List => self.list(),
            Request::Shutdown => Ok(serde_json::json!({})),
        }
    }

    // -----------------------------------------------------------------------------------------
    // create

    fn create(self: &Arc<Self>, id: &str, spec: &Value, stdio: &OpenedStdio) -> Result<Value, AgentError> {
        validate_create(id, spec)?;
        {
            let mut cs = lock(&self.containers);
            if cs.contains_key(id) {
                return Err(AgentError::new(ErrorCode::Exists, format!("container {} already exists", id)));
            }
            cs.insert(id.to_string(), Container { status: Status::Creating, pid: 0, exit: None });
        }
        match self.create_inner(id, spec, stdio) {
            Ok(pid) => Ok(serde_json::to_value(CreateResult { pid })
                .map_err(|e| AgentError::internal(e.to_string()))?),
            Err(e) => {
                lock(&self.containers).remove(id);
                Err(e)
            }
        }
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.cfg.bundle_dir.join(id)
    }

    fn create_inner(self: &Arc<Self>, id: &str, spec: &Value, stdio: &OpenedStdio) -> Result<i32, AgentError> {
        let bundle = self.bundle(id);
        let io_err = |what: &str, e: std::io::Error| AgentError::internal(format!("{} {}: {}", what, bundle.display(), e));
        if bundle.exists() {
            std::fs::remove_dir_all(&bundle).map_err(|e| io_err("cannot remove stale bundle", e))?;
        }
        std::fs::create_dir_all(&bundle).map_err(|e| io_err("cannot create bundle", e))?;
        let undo_bundle = |agent: &Agent| {
            if let Err(e) = std::fs::remove_dir_all(agent.bundle(id)) {
                crate::warn!("create {}: cleanup: cannot remove bundle: {}", id, e);
            }
        };
        let written = serde_json::to_vec(spec)
            .map_err(|e| AgentError::internal(format!("cannot encode spec: {}", e)))
            .and_then(|bytes| {
                std::fs::write(bundle.join("config.json"), bytes)
                    .map_err(|e| io_err("cannot write config.json in", e))
            });
        if let Err(e) = written {
            undo_bundle(self);
            return Err(e);
        }

        // Pipes: the process side goes to crun (and so to the container's init); the agent
        // keeps the other side. All are close-on-exec; std dup2()s the process side onto 0-2.
        let pipes = make_pipes(stdio).map_err(|e| AgentError::internal(format!("cannot create pipes: {}", e)));
        let (proc_stdio, ours) = match pipes {
            Ok(p) => p,
            Err(e) => {
                undo_bundle(self);
                return Err(e);
            }
        };
        let pid = match self.crun.create(id, &bundle, proc_stdio) {
            Ok(pid) => pid,
            Err(e) => {
                crate::warn!("create {}: crun create failed: {}", id, e.message);
                if let Err(d) = self.crun.delete_force(id) {
                    crate::debug!("create {}: cleanup crun delete -f: {}", id, d.message);
                }
                undo_bundle(self);
                return Err(AgentError::new(ErrorCode::Crun, e.message));
            }
        };
        let waiter = self.reaper.watch(pid);
        {
            let mut cs = lock(&self.containers);
            if let Some(c) = cs.get_mut(id) {
                c.status = Status::Created;
                c.pid = pid;
            }
        }
        self.start_relays(id, pid, stdio, ours, waiter);
        Ok(pid)
    }

    fn start_relays(self: &Arc<Self>, id: &str, pid: i32, stdio: &OpenedStdio, ours: AgentPipes, waiter: Waiter) {
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            if let Err(e) = std::thread::Builder::new().name(name.clone()).spawn(f) {
                crate::error!("cannot start thread {}: {}", name, e);
            }
        };
        let mut outs: Vec<Arc<OutStream>> = Vec::new();
        if let (Some(st), Some(fd)) = (&stdio.stdin, ours.stdin) {
            let st = Arc::clone(st);
            if let Some(rx) = stdio.take_stdin_rx() {
                spawn(format!("stdin-{}", st.id), Box::new(move || session::stdin_writer(st, rx, fd)));
            }
        }
        for (st, fd) in [(&stdio.stdout, ours.stdout), (&stdio.stderr, ours.stderr)] {
            if let (Some(st), Some(fd)) = (st, fd) {
                outs.push(Arc::clone(st));
                let st = Arc::clone(st);
                spawn(format!("out-{}", st.id), Box::new(move || session::output_pump(st, fd)));
            }
        }
        let agent = Arc::clone(self);
        let cid = id.to_string();
        spawn(
            format!("exit-{}", pid),
            Box::new(move || agent.watch_exit(cid, pid, waiter, outs)),
        );
    }

    /// Waits for the container's init to end, then: CLOSE stdout/stderr (after they reach EOF,
    /// at most EXIT_DRAIN), the exit event, `crun delete -f`.
    fn watch_exit(self: Arc<Self>, id: String, pid: i32, waiter: Waiter, outs: Vec<Arc<OutStream>>) {
        let status = match waiter.wait() {
            Some(s) => s,
            None => {
                crate::error!("container {}: lost track of init pid {}", id, pid);
                return;
            }
        };
        crate::info!("container {}: init pid {} ended ({})", id, pid, status);
        let deadline = Instant::now() + EXIT_DRAIN;
        for o in &outs {
            if !o.wait_finished(deadline) {
                crate::warn!(
                    "container {}: stream {} still open {} ms after exit; closing it",
                    id,
                    o.id,
                    EXIT_DRAIN.as_millis()
                );
            }
        }
        for o in &outs {
            o.close();
        }
        {
            let mut cs = lock(&self.containers);
            if let Some(c) = cs.get_mut(&id) {
                c.status = Status::Stopped;
                c.exit = Some(status);
            }
        }
        let (code, signal) = match status {
            ExitStatus::Exited(c) => (Some(c), None),
            ExitStatus::Signaled(s) => (None, Some(s)),
        };
        self.wait_inflight(&id);
        self.send_event(Event::Exit { container_id: id.clone(), pid, code, signal });
        if let Err(e) = self.crun.delete_force(&id) {
            crate::warn!("container {}: crun delete -f: {}", id, e.message);
        }
    }

    /// Waits (bounded) until no create/start/signal response for `id` is outstanding.
    fn wait_inflight(&self, id: &str) {
        let deadline = Instant::now() + crate::crun::CREATE_TIMEOUT + Duration::from_secs(10);
        let mut g = lock(&self.inflight);
        while g.get(id).copied().unwrap_or(0) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                crate::warn!("container {}: sending exit event with requests still in flight", id);
                return;
            }
            g = match self.inflight_cv.wait_timeout(g, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Sends an event to the connected host, or keeps it for the next one.
    fn send_event(&self, ev: Event) {
        let cur = lock(&self.current).clone();
        if let Some(s) = cur {
            if s.is_alive() && s.send_event(ev.clone()).is_ok() {
                return;
            }
        }
        crate::info!("no host connected: keeping event {:?} for the next session", ev);
        let mut q = lock(&self.pending_events);
        if q.len() >= MAX_PENDING_EVENTS {
            q.pop_front();
        }
        q.push_back(ev);
    }

    fn flush_pending_events(&self, session: &Session) {
        let events: Vec<Event> = lock(&self.pending_events).drain(..).collect();
        for ev in events {
            if session.send_event(ev.clone()).is_err() {
                lock(&self.pending_events).push_back(ev);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // start, signal, list

    fn start(&self, id: &str) -> Result<Value, AgentError> {
        validate_id(id)?;
        {
            let cs = lock(&self.containers);
            let c = cs.get(id).ok_or_else(|| AgentError::not_found(id))?;
            if c.status != Status::Created {
                return Err(AgentError::bad_state(format!("container {} is {}", id, c.status.name())));
            }
        }
        self.crun.start(id).map_err(|e| AgentError::new(ErrorCode::Crun, e.message))?;
        let mut cs = lock(&self.containers);
        if let Some(c) = cs.get_mut(id) {
            if c.status == Status::Created {
                c.status = Status::Running;
            }
        }
        Ok(serde_json::json!({}))
    }

    fn signal(&self, id: &str, signal: i64, all: bool) -> Result<Value, AgentError> {
        validate_id(id)?;
        let sig = match i32::try_from(signal) {
            Ok(s) if (1..=64).contains(&s) => s,
            _ => return Err(AgentError::bad_request(format!("signal {} is not in 1..64", signal))),
        };
        let pid = {
            let cs = lock(&self.containers);
            let c = cs.get(id).ok_or_else(|| AgentError::not_found(id))?;
            match c.status {
                Status::Stopped | Status::Creating => {
                    return Err(AgentError::bad_state(format!("container {} is {}", id, c.status.name())))
                }
                Status::Created | Status::Running => c.pid,
            }
        };
        match self.crun.kill(id, sig, all) {
            Ok(()) => Ok(serde_json::json!({})),
            Err(e) => {
                let stopped = lock(&self.containers).get(id).map_or(true, |c| c.status == Status::Stopped);
                let gone = matches!(sys::kill(pid, 0), Err(ref k) if k.raw_os_error() == Some(libc::ESRCH));
                if stopped || gone {
                    Err(AgentError::bad_state(format!("container {} has exited", id)))
                } else {
                    Err(AgentError::new(ErrorCode::Crun, e.message))
                }
            }
        }
    }

    fn list(&self) -> Result<Value, AgentError> {
        let cs = lock(&self.containers);
        let containers = cs
            .iter()
            .filter_map(|(id, c)| {
                let status = match c.status {
                    Status::Creating => return None,
                    Status::Created => ContainerStatus::Created,
                    Status::Running => ContainerStatus::Running,
                    Status::Stopped => ContainerStatus::Stopped,
                };
                Some(ContainerInfo { container_id: id.clone(), pid: c.pid, status })
            })
            .collect();
        serde_json::to_value(ListResult { containers }).map_err(|e| AgentError::internal(e.to_string()))
    }

    // -----------------------------------------------------------------------------------------
    // shutdown

    /// Kills every process, syncs and powers off (as init); otherwise kills the containers and
    /// exits. Does not return.
    fn power_off(&self) {
        // Give the response a moment to leave the port before the VM disappears.
        std::thread::sleep(Duration::from_millis(100));
        if self.cfg.init && sys::getpid() == 1 {
            crate::info!("shutdown: killing all processes, syncing, ending the VM");
            let _ = sys::kill(-1, libc::SIGKILL);
            sys::sync();
            end_vm(self.cfg.shutdown);
        }
        crate::info!("shutdown: killing containers and exiting (not PID 1)");
        let pids: Vec<i32> = lock(&self.containers)
            .values()
            .filter(|c| c.pid > 0 && c.status != Status::Stopped)
            .map(|c| c.pid)
            .collect();
        for pid in pids {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        sys::sync();
        std::process::exit(0);
    }
}

/// Ends the VM (PID 1 only). Does not return.
pub fn end_vm(mode: Option<ShutdownMode>) -> ! {
    let mode = mode.unwrap_or_else(|| {
        if std::path::Path::new("/sys/firmware/acpi").exists() {
            ShutdownMode::PowerOff
        } else {
            ShutdownMode::Reboot
        }
    });
    crate::info!("ending the VM with reboot({:?})", mode);
    let e = match mode {
        ShutdownMode::PowerOff => sys::power_off(),
        ShutdownMode::Reboot => sys::restart(),
    };
    crate::error!("reboot({:?}) failed: {}", mode, e);
    if mode == ShutdownMode::PowerOff {
        let e = sys::restart();
        crate::error!("reboot(AUTOBOOT) failed too: {}", e);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The agent's ends of a process's stdio pipes.
struct AgentPipes {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

fn make_pipes(stdio: &OpenedStdio) -> std::io::Result<(ProcessStdio, AgentPipes)> {
    let mut ours = AgentPipes { stdin: None, stdout: None, stderr: None };
    let stdin = if stdio.stdin.is_some() {
        let (r, w) = sys::pipe()?;
        ours.stdin = Some(w);
        Stdio::from(r)
    } else {
        Stdio::null()
    };
    let out = |want: bool, slot: &mut Option<OwnedFd>| -> std::io::Result<Stdio> {
        if want {
            let (r, w) = sys::pipe()?;
            *slot = Some(r);
            Ok(Stdio::from(w))
        } else {
            Ok(Stdio::null())
        }
    };
    let stdout = out(stdio.stdout.is_some(), &mut ours.stdout)?;
    let stderr = out(stdio.stderr.is_some(), &mut ours.stderr)?;
    Ok((ProcessStdio { stdin, stdout, stderr }, ours))
}

pub fn validate_id(id: &str) -> Result<(), AgentError> {
    if !msg::valid_container_id(id) {
        return Err(AgentError::bad_request(format!(
            "invalid containerId {:?}: must match ^[A-Za-z0-9_.+-]{{1,128}}$",
            id
        )));
    }
    // "." and ".." match the pattern but would name a directory above the bundle.
    if id == "." || id == ".." {
        return Err(AgentError::bad_request(format!("invalid containerId {:?}", id)));
    }
    Ok(())
}

fn validate_create(id: &str, spec: &Value) -> Result<(), AgentError> {
    validate_id(id)?;
    let obj = spec.as_object().ok_or_else(|| AgentError::bad_request("spec must be a JSON object"))?;
    if obj.get("root").and_then(|r| r.get("path")).and_then(Value::as_str).is_none() {
        return Err(AgentError::bad_request("spec.root.path is missing"));
    }
    if obj.get("process").and_then(|p| p.get("terminal")).and_then(Value::as_bool) == Some(true) {
        return Err(AgentError::bad_request("process.terminal is not supported by this agent yet"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("c1").is_ok());
        assert!(validate_id("...").is_ok());
        for bad in [".", "..", "", "a/b", "x y"] {
            assert_eq!(validate_id(bad).map_err(|e| e.code), Err(ErrorCode::BadRequest), "{:?}", bad);
        }
    }

    #[test]
    fn create_validation() {
        let good = serde_json::json!({"ociVersion":"1.0.2","process":{"args":["true"]},"root":{"path":"/r"}});
        assert!(validate_create("c1", &good).is_ok());
        for bad in [
            serde_json::json!([]),
            serde_json::json!({"process":{}}),
            serde_json::json!({"root":{"path":"/r"},"process":{"terminal":true}}),
        ] {
            assert_eq!(validate_create("c1", &bad).map_err(|e| e.code), Err(ErrorCode::BadRequest));
        }
        assert_eq!(validate_create("a/b", &good).map_err(|e| e.code), Err(ErrorCode::BadRequest));
    }
}
