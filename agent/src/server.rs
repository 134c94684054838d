//! The agent proper: connection loop, request handlers, containers and their execs.
//!
//! Handlers follow decode → validate → do → map error to a wire code. Each request runs on its
//! own thread, so a slow `crun create` does not hold up `ping` or stdin relay.

use crate::cgroup;
use crate::config::{Config, ShutdownMode};
use crate::console::{self, ConsoleSocket};
use crate::crun::{Crun, ProcessStdio};
use crate::frame::{self, Frame, FrameError};
use crate::msg::{
    self, AgentError, ContainerInfo, ContainerStatus, CreateResult, ErrorCode, Event, Hello,
    Incoming, ListResult, PsResult, Request, Response,
};
use crate::reaper::{Reaper, Waiter};
use crate::sched;
use crate::timens;
use crate::session::{
    self, lock, InStream, OpenedStdio, OutStream, Session, SharedWriter, Source, StreamRef,
};
use crate::sys::{self, ExitStatus};
use crate::transport::{Conn, Link};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::{BufReader, Read};
use std::os::unix::io::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the exit report waits for stdout/stderr to reach end-of-file (protocol.md).
pub const EXIT_DRAIN: Duration = Duration::from_secs(2);
/// How often a live container's memory.events is read for new OOM kills.
pub const OOM_POLL: Duration = Duration::from_millis(500);
/// How long the terminal master may take to arrive on the console socket once crun returned
/// (it is normally already queued).
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// The container's cgroup directory (where crun puts it, see cgroup.rs).
    cgroup: PathBuf,
    /// The init has a terminal (`process.terminal`).
    terminal: bool,
    /// The init's terminal master, for `resize`; dropped when the init ends.
    tty: Option<Arc<OwnedFd>>,
    /// memory.events `oom_kill` count already reported.
    oom_seen: Arc<Mutex<u64>>,
    /// Exec'd processes from `exec` until their exit event is being sent (then the id is free).
    execs: BTreeMap<String, ExecProc>,
    /// Exec exit events being sent right now (their records are already gone).
    exec_reports: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExecState {
    /// `crun exec` is running.
    Starting,
    Running,
    /// Ended; its exit event is being reported.
    Exited,
}

struct ExecProc {
    state: ExecState,
    pid: i32,
    terminal: bool,
    tty: Option<Arc<OwnedFd>>,
}

/// Whose exit a watcher reports.
#[derive(Clone, Debug)]
enum Proc {
    Init { id: String },
    Exec { id: String, exec_id: String },
}

impl fmt::Display for Proc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proc::Init { id } => write!(f, "container {}", id),
            Proc::Exec { id, exec_id } => write!(f, "exec {} of container {}", exec_id, id),
        }
    }
}

/// The `inflight` key of an exec: '/' cannot occur in ids, so it never names a container.
fn exec_key(id: &str, exec_id: &str) -> String {
    format!("{}/{}", id, exec_id)
}

pub struct Agent {
    cfg: Config,
    crun: Crun,
    reaper: Arc<Reaper>,
    containers: Mutex<BTreeMap<String, Container>>,
    /// Signalled (with `containers`) when an exec record is removed.
    execs_cv: Condvar,
    current: Mutex<Option<Arc<Session>>>,
    /// create/start/signal requests per container (and exec/signal per exec, keyed by
    /// `exec_key`) whose response is not sent yet: the exit event waits for them, so the host
    /// never sees a process exit before its create/exec or start succeeded.
    inflight: Mutex<BTreeMap<String, u32>>,
    inflight_cv: Condvar,
    pending_events: Mutex<VecDeque<Event>>,
    next_gen: AtomicU64,
    /// Numbers console sockets and update files.
    next_file: AtomicU64,
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
            execs_cv: Condvar::new(),
            current: Mutex::new(None),
            inflight: Mutex::new(BTreeMap::new()),
            inflight_cv: Condvar::new(),
            pending_events: Mutex::new(VecDeque::new()),
            next_gen: AtomicU64::new(1),
            next_file: AtomicU64::new(1),
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
        // after the create/exec request is buffered rather than discarded.
        let stdio = match &req {
            Request::Create { stdio, .. } | Request::Exec { stdio, .. } => {
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
            | Request::Signal { container_id, exec_id: None, .. } => Some(container_id.clone()),
            Request::Exec { container_id, exec_id, .. }
            | Request::Signal { container_id, exec_id: Some(exec_id), .. } => {
                Some(exec_key(container_id, exec_id))
            }
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
            Request::Exec { container_id, exec_id, process, .. } => {
                let stdio = stdio.ok_or_else(|| AgentError::internal("exec without streams"))?;
                match self.exec(&container_id, &exec_id, &process, &stdio) {
                    Ok(r) => Ok(r),
                    Err(e) => {
                        session.abandon_stdio(&stdio);
                        Err(e)
                    }
                }
            }
            Request::Start { container_id } => self.start(&container_id),
            Request::Signal { container_id, signal, all, exec_id } => {
                self.signal(&container_id, signal, all, exec_id.as_deref())
            }
            Request::Resize { container_id, exec_id, rows, cols } => {
                self.resize(&container_id, exec_id.as_deref(), rows, cols)
            }
            Request::Ps { container_id } => self.ps(&container_id),
            Request::Update { container_id, resources } => self.update(&container_id, &resources),
            Request::Stats { container_id } => self.stats(&container_id),
            Request::Network { interfaces, routes } => crate::net::handle(&interfaces, &routes),
            Request::List => self.list(),
            Request::Shutdown => Ok(serde_json::json!({})),
        }
    }

    // -----------------------------------------------------------------------------------------
    // create

    fn create(self: &Arc<Self>, id: &str, spec: &Value, stdio: &OpenedStdio) -> Result<Value, AgentError> {
        let opts = validate_create(id, spec, stdio.stderr.is_some())?;
        // crun 1.8.1 does not know these; the agent sets them on the init (src/oci/fields.ts).
        let mut spec = spec.clone();
        let init_attrs = sched::take_init_attrs(&mut spec).map_err(AgentError::bad_request)?;
        let time_offsets = timens::take_time_namespace(&mut spec).map_err(AgentError::bad_request)?;
        let cgroup = cgroup::container_dir(&self.cfg.cgroup_root, opts.cgroups_path.as_deref(), id)
            .map_err(AgentError::bad_request)?;
        {
            let mut cs = lock(&self.containers);
            if cs.contains_key(id) {
                return Err(AgentError::new(ErrorCode::Exists, format!("container {} already exists", id)));
            }
            cs.insert(
                id.to_string(),
                Container {
                    status: Status::Creating,
                    pid: 0,
                    exit: None,
                    cgroup,
                    terminal: opts.terminal,
                    tty: None,
                    oom_seen: Arc::new(Mutex::new(0)),
                    execs: BTreeMap::new(),
                    exec_reports: 0,
                },
            );
        }
        match self.create_inner(id, &spec, stdio, &opts, &init_attrs, time_offsets) {
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

    fn create_inner(
        self: &Arc<Self>,
        id: &str,
        spec: &Value,
        stdio: &OpenedStdio,
        opts: &CreateOpts,
        init_attrs: &sched::InitAttrs,
        time_offsets: Option<std::ffi::CString>,
    ) -> Result<i32, AgentError> {
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

        let (proc_stdio, plan) = match self.prepare_io(stdio, opts.terminal) {
            Ok(p) => p,
            Err(e) => {
                undo_bundle(self);
                return Err(e);
            }
        };
        let console = plan.console_path();
        let cleanup = |agent: &Agent| {
            if let Err(d) = agent.crun.delete_force(id) {
                crate::debug!("create {}: cleanup crun delete -f: {}", id, d.message);
            }
            undo_bundle(agent);
        };
        let pid = match self.crun.create(id, &bundle, console.as_deref(), proc_stdio, time_offsets) {
            Ok(pid) => pid,
            Err(e) => {
                crate::warn!("create {}: crun create failed: {}", id, e.message);
                cleanup(self);
                return Err(AgentError::new(ErrorCode::Crun, e.message));
            }
        };
        let waiter = self.reaper.watch(pid);
        // The init now waits on crun's exec fifo, in the container, its program not yet
        // started: what is set now holds from its first instruction (both survive execve).
        if let Err(msg) = init_attrs.apply(pid) {
            crate::warn!("create {}: {}", id, msg);
            cleanup(self);
            return Err(AgentError::bad_request(msg));
        }
        let io = match plan.finish() {
            Ok(io) => io,
            Err(e) => {
                crate::warn!("create {}: {}", id, e.message);
                cleanup(self);
                return Err(e);
            }
        };
        let tty = terminal_handle(&io, opts.console_size, id);
        let cg = lock(&self.containers).get(id).map(|c| c.cgroup.clone());
        let oom_base = cg.map_or(0, |cg| cgroup::oom_kills(&cg));
        {
            let mut cs = lock(&self.containers);
            if let Some(c) = cs.get_mut(id) {
                c.status = Status::Created;
                c.pid = pid;
                c.tty = tty;
                *lock(&c.oom_seen) = oom_base;
            }
        }
        self.start_relays(Proc::Init { id: id.to_string() }, pid, stdio, io, waiter);
        self.start_oom_watch(id);
        Ok(pid)
    }

    /// Pipes, or a console socket for a process with a terminal (then crun and the process get
    /// /dev/null and the process's terminal replaces them).
    fn prepare_io(&self, stdio: &OpenedStdio, terminal: bool) -> Result<(ProcessStdio, IoPlan), AgentError> {
        if terminal {
            let n = self.next_file.fetch_add(1, Ordering::SeqCst);
            // '@' cannot occur in a container id, so this never collides with a bundle.
            let path = self.cfg.bundle_dir.join("@tty").join(format!("{}.sock", n));
            let sock = ConsoleSocket::bind(path)
                .map_err(|e| AgentError::internal(format!("cannot listen on a console socket: {}", e)))?;
            let null = ProcessStdio { stdin: Stdio::null(), stdout: Stdio::null(), stderr: Stdio::null() };
            Ok((null, IoPlan::Console(sock)))
        } else {
            // Pipes: the process side goes to crun (and so to the process); the agent keeps the
            // other side. All are close-on-exec; std dup2()s the process side onto 0-2.
            let (p, ours) = make_pipes(stdio)
                .map_err(|e| AgentError::internal(format!("cannot create pipes: {}", e)))?;
            Ok((p, IoPlan::Pipes(ours)))
        }
    }

    fn start_relays(self: &Arc<Self>, who: Proc, pid: i32, stdio: &OpenedStdio, io: ProcIo, waiter: Waiter) {
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            if let Err(e) = std::thread::Builder::new().name(name.clone()).spawn(f) {
                crate::error!("cannot start thread {}: {}", name, e);
            }
        };
        let mut outs: Vec<Arc<OutStream>> = Vec::new();
        // The stdin side: the pipe's write end, or a duplicate of the terminal master.
        let (stdin_fd, io) = match io {
            ProcIo::Pipes(AgentPipes { stdin, stdout, stderr }) => {
                (stdin, ProcIo::Pipes(AgentPipes { stdin: None, stdout, stderr }))
            }
            ProcIo::Pty(m) => {
                let fd = if stdio.stdin.is_some() {
                    sys::dup(m.as_raw_fd())
                        .map_err(|e| crate::error!("{}: cannot duplicate the terminal for stdin: {}", who, e))
                        .ok()
                } else {
                    None
                };
                (fd, ProcIo::Pty(m))
            }
        };
        if let (Some(st), Some(fd)) = (&stdio.stdin, stdin_fd) {
            let st = Arc::clone(st);
            if let Some(rx) = stdio.take_stdin_rx() {
                spawn(format!("stdin-{}", st.id), Box::new(move || session::stdin_writer(st, rx, fd)));
            }
        }
        match io {
            ProcIo::Pipes(ours) => {
                for (st, fd) in [(&stdio.stdout, ours.stdout), (&stdio.stderr, ours.stderr)] {
                    if let (Some(st), Some(fd)) = (st, fd) {
                        outs.push(Arc::clone(st));
                        let st = Arc::clone(st);
                        spawn(format!("out-{}", st.id), Box::new(move || session::output_pump(st, fd, Source::Pipe)));
                    }
                }
            }
            ProcIo::Pty(master) => match &stdio.stdout {
                Some(st) => {
                    outs.push(Arc::clone(st));
                    let st = Arc::clone(st);
                    spawn(format!("tty-{}", st.id), Box::new(move || session::output_pump(st, master, Source::Terminal)));
                }
                None => spawn(format!("tty-null-{}", pid), Box::new(move || session::discard_pump(master))),
            },
        }
        let agent = Arc::clone(self);
        let stdin = stdio.stdin.clone();
        spawn(
            format!("exit-{}", pid),
            Box::new(move || agent.watch_exit(who, pid, waiter, outs, stdin)),
        );
    }

    /// Waits for a container's init or an exec'd process to end, then: CLOSE its output
    /// streams (after they reach EOF, at most EXIT_DRAIN), the exit event; for an init also
    /// `crun delete -f`.
    fn watch_exit(
        self: Arc<Self>,
        who: Proc,
        pid: i32,
        waiter: Waiter,
        outs: Vec<Arc<OutStream>>,
        stdin: Option<Arc<InStream>>,
    ) {
        let status = match waiter.wait() {
            Some(s) => s,
            None => {
                crate::error!("{}: lost track of pid {}", who, pid);
                return;
            }
        };
        let ended = Instant::now();
        crate::info!("{}: pid {} ended ({})", who, pid, status);
        let deadline = ended + EXIT_DRAIN;
        for o in &outs {
            if !o.wait_finished(deadline) {
                crate::warn!(
                    "{}: stream {} still open {} ms after exit; closing it",
                    who,
                    o.id,
                    EXIT_DRAIN.as_millis()
                );
            }
        }
        for o in &outs {
            o.close();
        }
        if let Some(s) = stdin {
            s.process_gone();
        }
        let (code, signal) = match status {
            ExitStatus::Exited(c) => (Some(c), None),
            ExitStatus::Signaled(s) => (None, Some(s)),
        };
        match who {
            Proc::Init { id } => {
                let oom = {
                    let mut cs = lock(&self.containers);
                    cs.get_mut(&id).map(|c| {
                        c.status = Status::Stopped;
                        c.exit = Some(status);
                        c.tty = None;
                        (c.cgroup.clone(), Arc::clone(&c.oom_seen))
                    })
                };
                // An OOM kill that ended the container is reported before its exit.
                if let Some((cg, seen)) = oom {
                    self.check_oom(&id, &cg, &seen);
                }
                self.wait_execs_reported(&id, deadline + Duration::from_secs(1));
                self.wait_inflight(&id);
                self.send_event(Event::Exit { container_id: id.clone(), exec_id: None, pid, code, signal });
                if let Err(e) = self.crun.delete_force(&id) {
                    crate::warn!("container {}: crun delete -f: {}", id, e.message);
                }
            }
            Proc::Exec { id, exec_id } => {
                if let Some(x) = lock(&self.containers).get_mut(&id).and_then(|c| c.execs.get_mut(&exec_id)) {
                    x.state = ExecState::Exited;
                    x.tty = None;
                }
                self.wait_inflight(&exec_key(&id, &exec_id));
                // The files go before the record, and the record before the event: once the
                // host has the event it may reuse the id at once.
                let dir = self.exec_dir(&id, &exec_id);
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    crate::debug!("cannot remove {}: {}", dir.display(), e);
                }
                if let Some(c) = lock(&self.containers).get_mut(&id) {
                    c.execs.remove(&exec_id);
                    c.exec_reports += 1;
                }
                self.send_event(Event::Exit {
                    container_id: id.clone(),
                    exec_id: Some(exec_id.clone()),
                    pid,
                    code,
                    signal,
                });
                if let Some(c) = lock(&self.containers).get_mut(&id) {
                    c.exec_reports = c.exec_reports.saturating_sub(1);
                }
                self.execs_cv.notify_all();
            }
        }
    }

    /// Waits (until `deadline`) for the exit events of the container's execs: in a pid
    /// namespace they die with the init, and their exits are reported before the container's.
    fn wait_execs_reported(&self, id: &str, deadline: Instant) {
        let mut cs = lock(&self.containers);
        loop {
            let live = cs.get(id).map_or(0, |c| c.execs.len() + c.exec_reports as usize);
            if live == 0 {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                crate::warn!("container {}: {} exec(s) still running after the init ended", id, live);
                return;
            }
            cs = match self.execs_cv.wait_timeout(cs, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Waits (bounded) until no gated request (create/start/signal of the container, or
    /// exec/signal of one exec, per `key`) has its response outstanding.
    fn wait_inflight(&self, key: &str) {
        let deadline = Instant::now() + crate::crun::CREATE_TIMEOUT + Duration::from_secs(10);
        let mut g = lock(&self.inflight);
        while g.get(key).copied().unwrap_or(0) > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                crate::warn!("{}: sending event with requests still in flight", key);
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
    // OOM events

    /// Polls the container's memory.events while it lives (created or running).
    fn start_oom_watch(self: &Arc<Self>, id: &str) {
        let agent = Arc::clone(self);
        let cid = id.to_string();
        let spawned = std::thread::Builder::new().name(format!("oom-{}", id)).spawn(move || loop {
            let id = &cid;
            std::thread::sleep(OOM_POLL);
            let (cg, seen) = match lock(&agent.containers).get(id) {
                Some(c) if matches!(c.status, Status::Created | Status::Running) => {
                    (c.cgroup.clone(), Arc::clone(&c.oom_seen))
                }
                _ => return,
            };
            agent.check_oom(id, &cg, &seen);
        });
        if let Err(e) = spawned {
            crate::error!("container {}: cannot start the OOM watch: {}", id, e);
        }
    }

    /// Sends one `oom` event if memory.events' oom_kill went up since the last report.
    fn check_oom(&self, id: &str, cgroup: &Path, seen: &Mutex<u64>) {
        let n = cgroup::oom_kills(cgroup);
        let report = {
            let mut g = lock(seen);
            if n > *g {
                *g = n;
                true
            } else {
                false
            }
        };
        if report {
            crate::info!("container {}: OOM kill (oom_kill {})", id, n);
            self.wait_inflight(id);
            self.send_event(Event::Oom { container_id: id.to_string() });
        }
    }

    // -----------------------------------------------------------------------------------------
    // exec

    fn exec_dir(&self, id: &str, exec_id: &str) -> PathBuf {
        self.bundle(id).join("exec").join(exec_id)
    }

    fn exec(self: &Arc<Self>, id: &str, exec_id: &str, process: &Value, stdio: &OpenedStdio) -> Result<Value, AgentError> {
        validate_id(id)?;
        validate_exec_id(exec_id)?;
        let (terminal, console_size) = validate_process(process, stdio.stderr.is_some())?;
        if let Some(field) = sched::has_init_attrs(process) {
            return Err(AgentError::bad_request(format!(
                "process.{} cannot be set for an exec'd process (crun exec would ignore it)",
                field
            )));
        }
        let init_pid = {
            let mut cs = lock(&self.containers);
            let c = cs.get_mut(id).ok_or_else(|| AgentError::not_found(id))?;
            match c.status {
                Status::Created | Status::Running => {}
                other => return Err(AgentError::bad_state(format!("container {} is {}", id, other.name()))),
            }
            if c.execs.contains_key(exec_id) {
                return Err(AgentError::new(
                    ErrorCode::Exists,
                    format!("exec {} already exists in container {}", exec_id, id),
                ));
            }
            c.execs.insert(
                exec_id.to_string(),
                ExecProc { state: ExecState::Starting, pid: 0, terminal, tty: None },
            );
            c.pid
        };
        match self.exec_inner(id, exec_id, process, stdio, terminal, console_size, init_pid) {
            Ok(pid) => Ok(serde_json::to_value(CreateResult { pid })
                .map_err(|e| AgentError::internal(e.to_string()))?),
            Err(e) => {
                if let Some(c) = lock(&self.containers).get_mut(id) {
                    c.execs.remove(exec_id);
                }
                self.execs_cv.notify_all();
                Err(e)
            }
        }
    }

    fn exec_inner(
        self: &Arc<Self>,
        id: &str,
        exec_id: &str,
        process: &Value,
        stdio: &OpenedStdio,
        terminal: bool,
        console_size: Option<(u16, u16)>,
        init_pid: i32,
    ) -> Result<i32, AgentError> {
        let dir = self.exec_dir(id, exec_id);
        let io_err = |what: &str, e: std::io::Error| AgentError::internal(format!("{} {}: {}", what, dir.display(), e));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io_err("cannot remove stale", e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| io_err("cannot create", e))?;
        let undo = || {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                crate::warn!("exec {} of {}: cleanup: cannot remove {}: {}", exec_id, id, dir.display(), e);
            }
        };
        let written = serde_json::to_vec(process)
            .map_err(|e| AgentError::internal(format!("cannot encode process: {}", e)))
            .and_then(|bytes| {
                std::fs::write(dir.join("process.json"), bytes).map_err(|e| io_err("cannot write process.json in", e))
            });
        if let Err(e) = written {
            undo();
            return Err(e);
        }
        let (proc_stdio, plan) = match self.prepare_io(stdio, terminal) {
            Ok(p) => p,
            Err(e) => {
                undo();
                return Err(e);
            }
        };
        let console = plan.console_path();
        let time_ns = if init_pid > 0 { timens::other_time_namespace(init_pid) } else { None };
        let (pid, started) = match self.crun.exec(id, &dir, console.as_deref(), proc_stdio, time_ns) {
            Ok(p) => p,
            Err(e) => {
                crate::warn!("exec {} of {}: crun exec failed: {}", exec_id, id, e.message);
                undo();
                return Err(AgentError::new(ErrorCode::Crun, e.message));
            }
        };
        let waiter = self.reaper.watch(pid);
        let io = match plan.finish() {
            Ok(io) => io,
            Err(e) => {
                crate::warn!("exec {} of {}: {}; killing pid {}", exec_id, id, e.message, pid);
                let _ = sys::kill(pid, libc::SIGKILL);
                undo();
                return Err(e);
            }
        };
        // crun applies consoleSize itself before the process runs; doing it again here costs
        // nothing and covers a crun that does not.
        let tty = terminal_handle(&io, console_size, id);
        // Answer once the process runs the requested program (see Crun::exec).
        started.wait();
        if let Some(x) = lock(&self.containers).get_mut(id).and_then(|c| c.execs.get_mut(exec_id)) {
            x.state = ExecState::Running;
            x.pid = pid;
            x.tty = tty;
        }
        let who = Proc::Exec { id: id.to_string(), exec_id: exec_id.to_string() };
        self.start_relays(who, pid, stdio, io, waiter);
        Ok(pid)
    }

    // -----------------------------------------------------------------------------------------
    // start, signal, resize, list

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

    fn signal(&self, id: &str, signal: i64, all: bool, exec_id: Option<&str>) -> Result<Value, AgentError> {
        validate_id(id)?;
        let sig = match i32::try_from(signal) {
            Ok(s) if (1..=64).contains(&s) => s,
            _ => return Err(AgentError::bad_request(format!("signal {} is not in 1..64", signal))),
        };
        if let Some(exec_id) = exec_id {
            validate_exec_id(exec_id)?;
            return self.signal_exec(id, exec_id, sig);
        }
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

    /// kill(2) on the exec'd process itself (it is our child: re-parented to the agent).
    fn signal_exec(&self, id: &str, exec_id: &str, sig: i32) -> Result<Value, AgentError> {
        let pid = {
            let cs = lock(&self.containers);
            let c = cs.get(id).ok_or_else(|| AgentError::not_found(id))?;
            let x = c.execs.get(exec_id).ok_or_else(|| AgentError::exec_not_found(id, exec_id))?;
            match x.state {
                ExecState::Running => x.pid,
                ExecState::Starting => {
                    return Err(AgentError::bad_state(format!("exec {} is being started", exec_id)))
                }
                ExecState::Exited => return Err(AgentError::bad_state(format!("exec {} has exited", exec_id))),
            }
        };
        match sys::kill(pid, sig) {
            Ok(()) => Ok(serde_json::json!({})),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                Err(AgentError::bad_state(format!("exec {} has exited", exec_id)))
            }
            Err(e) => Err(AgentError::internal(format!("kill({}, {}): {}", pid, sig, e))),
        }
    }

    fn resize(&self, id: &str, exec_id: Option<&str>, rows: u16, cols: u16) -> Result<Value, AgentError> {
        validate_id(id)?;
        if let Some(e) = exec_id {
            validate_exec_id(e)?;
        }
        let tty = {
            let cs = lock(&self.containers);
            let c = cs.get(id).ok_or_else(|| AgentError::not_found(id))?;
            match exec_id {
                None => {
                    if !c.terminal {
                        return Err(AgentError::bad_state(format!("container {} has no terminal", id)));
                    }
                    match (c.status, &c.tty) {
                        (Status::Created | Status::Running, Some(t)) => Arc::clone(t),
                        (Status::Created | Status::Running, None) => {
                            return Err(AgentError::bad_state(format!("the terminal of container {} is unavailable", id)))
                        }
                        (Status::Stopped, _) => {
                            return Err(AgentError::bad_state(format!("container {} has exited", id)))
                        }
                        (s, _) => {
                            return Err(AgentError::bad_state(format!("container {} is {}", id, s.name())))
                        }
                    }
                }
                Some(e) => {
                    let x = c.execs.get(e).ok_or_else(|| AgentError::exec_not_found(id, e))?;
                    if !x.terminal {
                        return Err(AgentError::bad_state(format!("exec {} has no terminal", e)));
                    }
                    match (x.state, &x.tty) {
                        (ExecState::Running, Some(t)) => Arc::clone(t),
                        (ExecState::Running, None) => {
                            return Err(AgentError::bad_state(format!("the terminal of exec {} is unavailable", e)))
                        }
                        (ExecState::Exited, _) => {
                            return Err(AgentError::bad_state(format!("exec {} has exited", e)))
                        }
                        (ExecState::Starting, _) => {
                            return Err(AgentError::bad_state(format!("exec {} is being started", e)))
                        }
                    }
                }
            }
        };
        sys::set_winsize(tty.as_raw_fd(), rows, cols)
            .map_err(|e| AgentError::internal(format!("TIOCSWINSZ: {}", e)))?;
        Ok(serde_json::json!({}))
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
    // ps, stats, update

    /// The container's cgroup directory, if its status is one of `ok`.
    fn cgroup_of(&self, id: &str, ok: &[Status]) -> Result<PathBuf, AgentError> {
        validate_id(id)?;
        let cs = lock(&self.containers);
        let c = cs.get(id).ok_or_else(|| AgentError::not_found(id))?;
        if !ok.contains(&c.status) {
            return Err(AgentError::bad_state(format!("container {} is {}", id, c.status.name())));
        }
        Ok(c.cgroup.clone())
    }

    fn ps(&self, id: &str) -> Result<Value, AgentError> {
        let dir = self.cgroup_of(id, &[Status::Created, Status::Running, Status::Stopped])?;
        let processes = cgroup::ps(&dir, Path::new("/proc"))
            .map_err(|e| AgentError::internal(format!("cannot read cgroup {}: {}", dir.display(), e)))?;
        serde_json::to_value(PsResult { processes }).map_err(|e| AgentError::internal(e.to_string()))
    }

    fn stats(&self, id: &str) -> Result<Value, AgentError> {
        let dir = self.cgroup_of(id, &[Status::Created, Status::Running])?;
        let stats = cgroup::stats(&dir).map_err(|e| AgentError::internal(e.to_string()))?;
        serde_json::to_value(stats).map_err(|e| AgentError::internal(e.to_string()))
    }

    fn update(&self, id: &str, resources: &Value) -> Result<Value, AgentError> {
        self.cgroup_of(id, &[Status::Created, Status::Running])?;
        if !resources.is_object() {
            return Err(AgentError::bad_request("resources must be a JSON object (OCI linux.resources)"));
        }
        let n = self.next_file.fetch_add(1, Ordering::SeqCst);
        let file = self.bundle(id).join(format!("update-{}.json", n));
        let bytes = serde_json::to_vec(resources)
            .map_err(|e| AgentError::internal(format!("cannot encode resources: {}", e)))?;
        std::fs::write(&file, bytes)
            .map_err(|e| AgentError::internal(format!("cannot write {}: {}", file.display(), e)))?;
        let r = self.crun.update(id, &file);
        if let Err(e) = std::fs::remove_file(&file) {
            crate::debug!("cannot remove {}: {}", file.display(), e);
        }
        r.map_err(|e| AgentError::new(ErrorCode::Crun, e.message))?;
        Ok(serde_json::json!({}))
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
        let mut pids: Vec<i32> = Vec::new();
        for c in lock(&self.containers).values() {
            if c.pid > 0 && c.status != Status::Stopped {
                pids.push(c.pid);
            }
            pids.extend(c.execs.values().filter(|x| x.state == ExecState::Running).map(|x| x.pid));
        }
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

/// How a process's stdio is being set up: pipes, or a console socket crun sends the terminal to.
enum IoPlan {
    Pipes(AgentPipes),
    Console(ConsoleSocket),
}

impl IoPlan {
    fn console_path(&self) -> Option<PathBuf> {
        match self {
            IoPlan::Console(s) => Some(s.path().to_path_buf()),
            IoPlan::Pipes(_) => None,
        }
    }

    /// After crun succeeded: the agent's ends (for a terminal, the master crun sent).
    fn finish(self) -> Result<ProcIo, AgentError> {
        match self {
            IoPlan::Pipes(p) => Ok(ProcIo::Pipes(p)),
            IoPlan::Console(sock) => sock.receive(CONSOLE_TIMEOUT).map(ProcIo::Pty).map_err(|e| {
                AgentError::new(ErrorCode::Crun, format!("no terminal from crun on the console socket: {}", e))
            }),
        }
    }
}

/// The agent's side of a running process's stdio.
enum ProcIo {
    Pipes(AgentPipes),
    /// The terminal master.
    Pty(OwnedFd),
}

/// Applies `consoleSize` to a terminal and keeps a descriptor of it for `resize`.
fn terminal_handle(io: &ProcIo, size: Option<(u16, u16)>, id: &str) -> Option<Arc<OwnedFd>> {
    let master = match io {
        ProcIo::Pty(m) => m,
        ProcIo::Pipes(_) => return None,
    };
    if let Some((rows, cols)) = size {
        if let Err(e) = sys::set_winsize(master.as_raw_fd(), rows, cols) {
            crate::warn!("container {}: cannot set the terminal size: {}", id, e);
        }
    }
    match sys::dup(master.as_raw_fd()) {
        Ok(fd) => Some(Arc::new(fd)),
        Err(e) => {
            crate::warn!("container {}: cannot keep the terminal for resize: {}", id, e);
            None
        }
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
    validate_name("containerId", id)
}

pub fn validate_exec_id(id: &str) -> Result<(), AgentError> {
    validate_name("execId", id)
}

fn validate_name(what: &str, id: &str) -> Result<(), AgentError> {
    if !msg::valid_container_id(id) {
        return Err(AgentError::bad_request(format!(
            "invalid {} {:?}: must match ^[A-Za-z0-9_.+-]{{1,128}}$",
            what, id
        )));
    }
    // "." and ".." match the pattern but would name a directory above the bundle.
    if id == "." || id == ".." {
        return Err(AgentError::bad_request(format!("invalid {} {:?}", what, id)));
    }
    Ok(())
}

/// What `create` takes from the spec besides writing it.
#[derive(Debug, PartialEq, Eq)]
struct CreateOpts {
    terminal: bool,
    console_size: Option<(u16, u16)>,
    cgroups_path: Option<String>,
}

/// `process.terminal`: absent/null = false; anything but a boolean is refused.
fn terminal_flag(process: Option<&Value>) -> Result<bool, AgentError> {
    match process.and_then(|p| p.get("terminal")) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(AgentError::bad_request("process.terminal must be a boolean")),
    }
}

/// Terminal options shared by `create` and `exec`; `has_stderr`: the request named a stderr
/// stream.
fn terminal_opts(process: Option<&Value>, has_stderr: bool) -> Result<(bool, Option<(u16, u16)>), AgentError> {
    let terminal = terminal_flag(process)?;
    let size = match process {
        Some(p) => console::console_size(p).map_err(AgentError::bad_request)?,
        None => None,
    };
    if terminal && has_stderr {
        return Err(AgentError::bad_request(
            "stdio.stderr must be null for a process with a terminal (its output is on stdout)",
        ));
    }
    Ok((terminal, size))
}

fn validate_create(id: &str, spec: &Value, has_stderr: bool) -> Result<CreateOpts, AgentError> {
    validate_id(id)?;
    let obj = spec.as_object().ok_or_else(|| AgentError::bad_request("spec must be a JSON object"))?;
    if obj.get("root").and_then(|r| r.get("path")).and_then(Value::as_str).is_none() {
        return Err(AgentError::bad_request("spec.root.path is missing"));
    }
    let (terminal, console_size) = terminal_opts(obj.get("process"), has_stderr)?;
    let cgroups_path = match obj.get("linux").and_then(|l| l.get("cgroupsPath")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(AgentError::bad_request("linux.cgroupsPath must be a string")),
    };
    Ok(CreateOpts { terminal, console_size, cgroups_path })
}

/// Checks an `exec` request's process object: (terminal, consoleSize).
fn validate_process(process: &Value, has_stderr: bool) -> Result<(bool, Option<(u16, u16)>), AgentError> {
    let obj = process.as_object().ok_or_else(|| AgentError::bad_request("process must be a JSON object"))?;
    match obj.get("args").and_then(Value::as_array) {
        Some(a) if !a.is_empty() && a.iter().all(Value::is_string) => {}
        _ => return Err(AgentError::bad_request("process.args must be a non-empty array of strings")),
    }
    terminal_opts(Some(process), has_stderr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids() {
        assert!(validate_id("c1").is_ok());
        assert!(validate_id("...").is_ok());
        for bad in [".", "..", "", "a/b", "x y"] {
            assert_eq!(validate_id(bad).map_err(|e| e.code), Err(ErrorCode::BadRequest), "{:?}", bad);
            assert_eq!(validate_exec_id(bad).map_err(|e| e.code), Err(ErrorCode::BadRequest), "{:?}", bad);
        }
        assert!(validate_exec_id("a/b").map_err(|e| e.message).unwrap_err().contains("execId"));
    }

    #[test]
    fn create_validation() {
        let good = json!({"ociVersion":"1.0.2","process":{"args":["true"]},"root":{"path":"/r"},"linux":{"cgroupsPath":"/kata/c1"}});
        assert_eq!(
            validate_create("c1", &good, true),
            Ok(CreateOpts { terminal: false, console_size: None, cgroups_path: Some("/kata/c1".into()) })
        );
        let tty = json!({"root":{"path":"/r"},"process":{"terminal":true,"consoleSize":{"height":24,"width":80}}});
        assert_eq!(
            validate_create("c1", &tty, false),
            Ok(CreateOpts { terminal: true, console_size: Some((24, 80)), cgroups_path: None })
        );
        for bad in [
            json!([]),
            json!({"process":{}}),
            json!({"root":{"path":"/r"},"process":{"terminal":"yes"}}),
            json!({"root":{"path":"/r"},"process":{"terminal":true,"consoleSize":{"height":1}}}),
            json!({"root":{"path":"/r"},"linux":{"cgroupsPath":7}}),
        ] {
            assert_eq!(validate_create("c1", &bad, false).map_err(|e| e.code), Err(ErrorCode::BadRequest), "{}", bad);
        }
        // A terminal process has no separate stderr.
        assert_eq!(validate_create("c1", &tty, true).map_err(|e| e.code), Err(ErrorCode::BadRequest));
        assert_eq!(validate_create("a/b", &good, false).map_err(|e| e.code), Err(ErrorCode::BadRequest));
    }

    #[test]
    fn exec_process_validation() {
        assert_eq!(validate_process(&json!({"args":["sh"],"cwd":"/"}), true), Ok((false, None)));
        assert_eq!(
            validate_process(&json!({"args":["sh"],"terminal":true,"consoleSize":{"height":5,"width":6}}), false),
            Ok((true, Some((5, 6))))
        );
        for bad in [
            json!(null),
            json!({"cwd":"/"}),
            json!({"args":[]}),
            json!({"args":["sh", 1]}),
            json!({"args":"sh"}),
            json!({"args":["sh"],"terminal":1}),
        ] {
            assert_eq!(validate_process(&bad, false).map_err(|e| e.code), Err(ErrorCode::BadRequest), "{}", bad);
        }
        assert_eq!(
            validate_process(&json!({"args":["sh"],"terminal":true}), true).map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
    }
}
