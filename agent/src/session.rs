//! One handshaken host connection ("session") and the stdio streams opened on it.
//!
//! Lock order (never take a lock to the left while holding one to the right):
//! `OutStream::send_lock` → `Session::writer`; `Session::streams` and `OutStream::state` are
//! only held briefly and never while taking another of these locks, except that `kill` takes
//! `streams` then each stream's `state`.

use crate::flow::{RecvWindow, SendWindow};
use crate::frame::{self, Frame, MAX_PAYLOAD};
use crate::msg::{self, Event, Hello, Message, Response};
use crate::sys;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::os::unix::io::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The writing half of a connection, shared by the sessions on it. Holding the lock while
/// writing a whole frame keeps frames from interleaving.
pub type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

pub struct Session {
    pub gen: u64,
    writer: SharedWriter,
    alive: AtomicBool,
    /// The host's HELLO.
    pub peer: Hello,
    streams: Mutex<Streams>,
}

#[derive(Default)]
struct Streams {
    /// Every id the host has named on this session (ids are never reused on a connection).
    used: HashSet<u32>,
    table: HashMap<u32, StreamRef>,
}

#[derive(Clone)]
pub enum StreamRef {
    In(Arc<InStream>),
    Out(Arc<OutStream>),
}

impl Session {
    pub fn new(gen: u64, writer: SharedWriter, peer: Hello) -> Arc<Session> {
        Arc::new(Session {
            gen,
            writer,
            alive: AtomicBool::new(true),
            peer,
            streams: Mutex::new(Streams::default()),
        })
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Largest DATA payload we may send to this host.
    pub fn max_data(&self) -> usize {
        (self.peer.max_payload as usize).min(MAX_PAYLOAD).max(1)
    }

    /// Writes one frame. A write error ends the session.
    pub fn send(&self, f: &Frame) -> io::Result<()> {
        if !self.is_alive() {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "session ended"));
        }
        let bytes = frame::encode(f)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let r = {
            let mut w = lock(&self.writer);
            w.write_all(&bytes).and_then(|_| w.flush())
        };
        if let Err(e) = &r {
            crate::warn!("session {}: write failed: {}; ending session", self.gen, e);
            self.kill();
        }
        r
    }

    pub fn send_message(&self, m: &Message) -> io::Result<()> {
        let payload = msg::encode_message(m)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        crate::debug!("session {}: send {}", self.gen, String::from_utf8_lossy(&payload));
        self.send(&Frame::Msg(payload))
    }

    pub fn send_response(&self, r: Response) -> io::Result<()> {
        self.send_message(&Message::Res(r))
    }

    pub fn send_event(&self, e: Event) -> io::Result<()> {
        self.send_message(&Message::Event { event: e })
    }

    /// Ends the session: streams are dropped (stdin pipes get EOF once their writers finish),
    /// output pumps stop waiting for credit and discard.
    pub fn kill(&self) {
        if !self.alive.swap(false, Ordering::SeqCst) {
            return;
        }
        let table: Vec<StreamRef> = {
            let mut s = lock(&self.streams);
            s.table.drain().map(|(_, v)| v).collect()
        };
        for s in table {
            match s {
                StreamRef::Out(o) => o.wake(),
                StreamRef::In(i) => i.close(),
            }
        }
    }

    pub fn stream(&self, id: u32) -> Option<StreamRef> {
        lock(&self.streams).table.get(&id).cloned()
    }

    pub fn remove_stream(&self, id: u32) {
        lock(&self.streams).table.remove(&id);
    }

    /// Registers the stdio streams a `create` names. Fails (E_BAD_REQUEST) on id 0, duplicate
    /// ids, or ids already used on this session.
    pub fn open_stdio(
        self: &Arc<Self>,
        stdio: &msg::StdioStreams,
        window: u32,
    ) -> Result<OpenedStdio, msg::AgentError> {
        let ids: Vec<u32> = [stdio.stdin, stdio.stdout, stdio.stderr].iter().flatten().copied().collect();
        let mut s = lock(&self.streams);
        let mut seen = HashSet::new();
        for id in &ids {
            if *id == 0 {
                return Err(msg::AgentError::bad_request("stream id 0 is reserved"));
            }
            if !seen.insert(*id) {
                return Err(msg::AgentError::bad_request(format!("stream {} named twice", id)));
            }
            if s.used.contains(id) {
                return Err(msg::AgentError::bad_request(format!(
                    "stream {} was already used on this connection",
                    id
                )));
            }
        }
        if !self.is_alive() {
            return Err(msg::AgentError::internal("connection ended"));
        }
        let mut out = OpenedStdio {
            stdin: None,
            stdin_rx: Mutex::new(None),
            stdout: None,
            stderr: None,
            ids: ids.clone(),
        };
        if let Some(id) = stdio.stdin {
            let (tx, rx) = mpsc::channel();
            let st = Arc::new(InStream {
                id,
                session: Arc::clone(self),
                recv: Mutex::new(RecvWindow::new(window)),
                tx: Mutex::new(Some(tx)),
            });
            s.table.insert(id, StreamRef::In(Arc::clone(&st)));
            out.stdin = Some(st);
            out.stdin_rx = Mutex::new(Some(rx));
        }
        for (slot, id) in [(&mut out.stdout, stdio.stdout), (&mut out.stderr, stdio.stderr)] {
            if let Some(id) = id {
                let st = OutStream::new(id, Arc::clone(self));
                s.table.insert(id, StreamRef::Out(Arc::clone(&st)));
                *slot = Some(st);
            }
        }
        for id in ids {
            s.used.insert(id);
        }
        Ok(out)
    }

    /// Forgets the streams of a failed create.
    pub fn abandon_stdio(&self, opened: &OpenedStdio) {
        let mut s = lock(&self.streams);
        for id in &opened.ids {
            s.table.remove(id);
        }
    }
}

/// Streams registered for one process.
pub struct OpenedStdio {
    pub stdin: Option<Arc<InStream>>,
    /// Taken by the stdin writer thread once the pipe exists.
    stdin_rx: Mutex<Option<Receiver<InMsg>>>,
    pub stdout: Option<Arc<OutStream>>,
    pub stderr: Option<Arc<OutStream>>,
    ids: Vec<u32>,
}

impl OpenedStdio {
    pub fn take_stdin_rx(&self) -> Option<Receiver<InMsg>> {
        lock(&self.stdin_rx).take()
    }
}

// ---------------------------------------------------------------------------------------------
// host → guest (stdin)

pub enum InMsg {
    Data(Vec<u8>),
    Close,
    /// The process has ended: close the pipe (or terminal), keep crediting what arrives.
    Gone,
}

pub struct InStream {
    pub id: u32,
    session: Arc<Session>,
    recv: Mutex<RecvWindow>,
    tx: Mutex<Option<Sender<InMsg>>>,
}

impl InStream {
    /// DATA from the host (reader thread). Err = protocol error (more than granted).
    pub fn on_data(&self, data: Vec<u8>) -> Result<(), crate::flow::FlowError> {
        lock(&self.recv).on_data(data.len())?;
        if let Some(tx) = lock(&self.tx).as_ref() {
            // If the writer thread is gone (create failed) the bytes are dropped.
            let _ = tx.send(InMsg::Data(data));
        }
        Ok(())
    }

    /// CLOSE from the host: the pipe is closed after the queued bytes are written.
    pub fn close(&self) {
        if let Some(tx) = lock(&self.tx).take() {
            let _ = tx.send(InMsg::Close);
        }
    }

    /// The process has ended: the writer lets go of its descriptor (bytes that still arrive
    /// are discarded and credited, until the host's CLOSE or the end of the session).
    pub fn process_gone(&self) {
        if let Some(tx) = lock(&self.tx).as_ref() {
            let _ = tx.send(InMsg::Gone);
        }
    }

    /// Called by the writer thread once `n` bytes reached the pipe (or were discarded because
    /// the process is gone): reopen the window first, then tell the host.
    fn credit(&self, n: usize) {
        let mut left = n;
        while left > 0 {
            let chunk = left.min(u32::MAX as usize);
            left -= chunk;
            lock(&self.recv).on_credit_sent(chunk as u32);
            let _ = self.session.send(&Frame::Credit { stream: self.id, credit: chunk as u32 });
        }
    }
}

/// Writes host stdin bytes to the process's pipe (or terminal master), then grants CREDIT.
/// Runs on its own thread so a process that does not read its stdin stalls only this stream.
pub fn stdin_writer(stream: Arc<InStream>, rx: Receiver<InMsg>, pipe: OwnedFd) {
    let mut file = Some(std::fs::File::from(pipe));
    for m in rx {
        match m {
            InMsg::Data(bytes) => {
                if let Some(f) = file.as_mut() {
                    if let Err(e) = f.write_all(&bytes) {
                        crate::debug!("stdin stream {}: {}; discarding further input", stream.id, e);
                        file = None;
                    }
                }
                stream.credit(bytes.len());
            }
            InMsg::Gone => file = None,
            InMsg::Close => break,
        }
    }
    crate::debug!("stdin stream {}: closed", stream.id);
    drop(file);
    stream.session.remove_stream(stream.id);
}

// ---------------------------------------------------------------------------------------------
// guest → host (stdout, stderr)

struct OutState {
    window: SendWindow,
    /// CLOSE sent (or the stream was abandoned): no more DATA.
    closed: bool,
    /// The pump has finished (EOF or abandoned).
    finished: bool,
}

pub struct OutStream {
    pub id: u32,
    session: Arc<Session>,
    state: Mutex<OutState>,
    cv: Condvar,
    /// Held while sending DATA or CLOSE, so no DATA can follow a CLOSE.
    send_lock: Mutex<()>,
}

enum Budget {
    Send(usize),
    Discard,
    Stop,
}

impl OutStream {
    pub fn new(id: u32, session: Arc<Session>) -> Arc<OutStream> {
        let window = SendWindow::new(session.peer.window);
        Arc::new(OutStream {
            id,
            session,
            state: Mutex::new(OutState { window, closed: false, finished: false }),
            cv: Condvar::new(),
            send_lock: Mutex::new(()),
        })
    }

    /// CREDIT from the host.
    pub fn add_credit(&self, n: u32) {
        lock(&self.state).window.add(n);
        self.cv.notify_all();
    }

    fn wake(&self) {
        let _g = lock(&self.state);
        self.cv.notify_all();
    }

    fn budget(&self) -> Budget {
        let mut st = lock(&self.state);
        loop {
            if st.closed {
                return Budget::Stop;
            }
            if !self.session.is_alive() {
                return Budget::Discard;
            }
            let n = st.window.next_chunk(self.session.max_data());
            if n > 0 {
                return Budget::Send(n);
            }
            st = match self.cv.wait_timeout(st, Duration::from_millis(500)) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    fn send_data(&self, data: &[u8]) {
        let _s = lock(&self.send_lock);
        {
            let mut st = lock(&self.state);
            if st.closed {
                return;
            }
            if let Err(e) = st.window.consume(data.len()) {
                crate::error!("stream {}: {} (dropping data)", self.id, e);
                return;
            }
        }
        let _ = self
            .session
            .send(&Frame::Data { stream: self.id, data: data.to_vec() });
    }

    /// Sends CLOSE once; after it no DATA is sent on this stream.
    pub fn close(&self) {
        let _s = lock(&self.send_lock);
        {
            let mut st = lock(&self.state);
            if st.closed {
                return;
            }
            st.closed = true;
        }
        self.cv.notify_all();
        let _ = self.session.send(&Frame::Close { stream: self.id });
    }

    fn set_finished(&self) {
        lock(&self.state).finished = true;
        self.cv.notify_all();
    }

    /// Waits until the pump has finished or `deadline` passes. True if finished.
    pub fn wait_finished(&self, deadline: Instant) -> bool {
        let mut st = lock(&self.state);
        while !st.finished {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = match self.cv.wait_timeout(st, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

/// What an output pump reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Pipe,
    /// A terminal master: EIO means every holder of the slave side has closed it, i.e. EOF.
    Terminal,
}

/// Relays a process's stdout/stderr pipe (or terminal master) to the host within the credit
/// window. Blocks only itself while out of credit. At EOF it sends CLOSE. If the exit handler
/// gives up on it (CLOSE already sent), it stops reading and closes the pipe.
pub fn output_pump(stream: Arc<OutStream>, pipe: OwnedFd, source: Source) {
    let fd = pipe.as_raw_fd();
    let mut buf = vec![0u8; MAX_PAYLOAD];
    loop {
        let want = match stream.budget() {
            Budget::Stop => break,
            Budget::Discard => buf.len(),
            Budget::Send(n) => n,
        };
        match sys::poll_one(fd, libc::POLLIN, Some(Duration::from_millis(200))) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(e) => {
                crate::error!("stream {}: poll: {}", stream.id, e);
                stream.close();
                break;
            }
        }
        match sys::read_fd(fd, &mut buf[..want]) {
            Ok(0) => {
                stream.close();
                break;
            }
            Ok(n) => {
                if stream.session.is_alive() {
                    stream.send_data(&buf[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if source == Source::Terminal && e.raw_os_error() == Some(libc::EIO) => {
                stream.close();
                break;
            }
            Err(e) => {
                crate::error!("stream {}: read: {}", stream.id, e);
                stream.close();
                break;
            }
        }
    }
    crate::debug!("stream {}: pump finished", stream.id);
    drop(pipe);
    stream.set_finished();
    stream.session.remove_stream(stream.id);
}

/// Reads and drops a terminal's output when the host gave no stream for it, so the process
/// never blocks writing to its terminal. Ends at EOF/EIO (the process and its children closed
/// the terminal).
pub fn discard_pump(master: OwnedFd) {
    let mut buf = vec![0u8; 16384];
    loop {
        match sys::read_fd(master.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => {
                let _ = sys::poll_one(master.as_raw_fd(), libc::POLLIN, Some(Duration::from_millis(200)));
            }
            Err(_) => break,
        }
    }
}
