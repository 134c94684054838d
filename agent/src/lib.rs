//! kata-agent: the guest side of kata-runtime. PID 1 of the VM; serves the host over one
//! multiplexed byte stream (docs/protocol.md) and drives crun to run the container.

pub mod log;

pub mod boot;
pub mod cgroup;
pub mod config;
pub mod console;
pub mod crun;
pub mod flow;
pub mod frame;
pub mod msg;
pub mod net;
pub mod reaper;
pub mod sched;
pub mod server;
pub mod session;
pub mod sys;
pub mod timens;
#[doc(hidden)]
pub mod testrng;
pub mod transport;
