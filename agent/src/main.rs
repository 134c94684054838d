//! kata-agent entry point. As PID 1 (the initramfs's /init) it sets up the guest first; as an
//! ordinary process (tests) it only serves, as a child subreaper so container processes are
//! re-parented to it.

use kata_agent::config::{self, Cli, Config};
use kata_agent::{boot, log, reaper::Reaper, server::Agent, sys, transport};
use kata_agent::{error, info, warn};
use std::path::Path;
use std::time::Duration;

fn main() {
    let pid1 = sys::getpid() == 1;
    log::init(false);
    let cli = match config::parse_args(std::env::args().skip(1)) {
        Ok(Cli::Help) => {
            println!("{}", config::USAGE);
            return;
        }
        Ok(Cli::Version) => {
            println!("kata-agent {} (protocol {})", env!("CARGO_PKG_VERSION"), kata_agent::msg::PROTOCOL_VERSION);
            return;
        }
        Ok(Cli::Run(o)) => o,
        Err(e) if pid1 => {
            // The kernel passes unknown command-line words to init: never die over them.
            warn!("ignoring arguments: {}", e);
            config::CliOverrides::default()
        }
        Err(e) => {
            eprintln!("kata-agent: {}\n{}", e, config::USAGE);
            std::process::exit(2);
        }
    };

    let mut cfg = Config { init: pid1, ..Config::default() };
    let init = pid1 || cli.init;
    if pid1 {
        boot::reroot();
    }
    if init {
        boot::mount_proc();
        match std::fs::read_to_string("/proc/cmdline") {
            Ok(cmdline) => {
                for w in config::apply_cmdline(&mut cfg, &cmdline) {
                    warn!("kernel command line: {}", w);
                }
            }
            Err(e) => error!("cannot read /proc/cmdline: {}", e),
        }
    }
    cfg.apply_overrides(cli, std::env::var("KATA_AGENT_CRUN").ok());
    cfg.init = init;
    log::set_debug(cfg.debug);
    info!(
        "kata-agent {} starting (pid {}, transport {:?}, crun {}, debug {})",
        env!("CARGO_PKG_VERSION"),
        sys::getpid(),
        cfg.transport,
        cfg.crun.display(),
        cfg.debug
    );

    if init {
        boot::mount_basics();
        boot::loopback_up();
        boot::enable_cgroup_controllers(Path::new("/sys/fs/cgroup"));
        boot::load_modules();
        boot::mount_shared();
    }
    if !pid1 {
        if let Err(e) = sys::set_child_subreaper() {
            warn!("cannot become child subreaper: {} (container exits may be missed)", e);
        }
    }
    if let Err(e) = std::fs::create_dir_all(&cfg.bundle_dir) {
        error!("cannot create {}: {}", cfg.bundle_dir.display(), e);
    }

    let reaper = loop {
        match Reaper::start() {
            Ok(r) => break r,
            Err(e) => {
                error!("cannot start the reaper thread: {}; retrying", e);
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    let link = transport::open(&cfg.transport);
    let shutdown = cfg.shutdown;
    let agent = Agent::new(cfg, reaper);
    agent.serve(link);
    // serve() does not return; if it ever does, PID 1 must not exit (kernel panic).
    error!("serve loop ended");
    if pid1 {
        sys::sync();
        kata_agent::server::end_vm(shutdown);
    }
    std::process::exit(1);
}
