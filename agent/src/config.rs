//! Agent settings: built-in defaults, then the kernel command line (when PID 1), then the
//! environment (`KATA_AGENT_CRUN`), then command-line flags.

use std::path::PathBuf;

pub const DEFAULT_SERIAL_PORT: &str = "agent.0";
pub const DEFAULT_VSOCK_PORT: u32 = 1024;
pub const DEFAULT_BUNDLE_DIR: &str = "/run/kata/bundles";
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";
pub const SHARED_DIR: &str = "/run/kata/shared";
pub const SHARED_TAG: &str = "kataShared";
pub const MODULES_LIST: &str = "/etc/kata/modules.list";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportSpec {
    /// virtio-serial port with this name (/sys/class/virtio-ports/*/name).
    Serial { port: String },
    /// AF_VSOCK listener on this port.
    Vsock { port: u32 },
    /// Unix socket: the agent CONNECTS to this path (retrying until it exists) and reconnects
    /// after each disconnect. Used to test the request loop on the host.
    Unix { path: PathBuf },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub transport: TransportSpec,
    pub debug: bool,
    /// crun binary (resolved through PATH when it has no slash).
    pub crun: PathBuf,
    /// Where bundles are written: <bundle_dir>/<containerId>/config.json.
    pub bundle_dir: PathBuf,
    /// The cgroup v2 mount crun places containers under (read by ps, stats, the OOM watch).
    pub cgroup_root: PathBuf,
    /// Act as the guest's init: mounts, modules, virtio-fs, power off on shutdown.
    pub init: bool,
    /// How `shutdown` ends the VM when the agent is PID 1; `None` = decide at shutdown time
    /// (power off if the kernel has ACPI, i.e. /sys/firmware/acpi exists, else reboot).
    pub shutdown: Option<ShutdownMode>,
}

/// reboot(2) command used by `shutdown`. Without ACPI (`-M microvm,acpi=off`, or a kernel built
/// without it) the kernel has no power-off method and RB_POWER_OFF only halts the CPU, leaving
/// QEMU running; RB_AUTOBOOT resets, and QEMU's `-no-reboot` turns the reset into an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownMode {
    PowerOff,
    Reboot,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            transport: TransportSpec::Serial { port: DEFAULT_SERIAL_PORT.to_string() },
            debug: false,
            crun: PathBuf::from("crun"),
            bundle_dir: PathBuf::from(DEFAULT_BUNDLE_DIR),
            cgroup_root: PathBuf::from(DEFAULT_CGROUP_ROOT),
            init: false,
            shutdown: None,
        }
    }
}

/// Applies `kata.*` parameters of /proc/cmdline. Returns warnings about values it ignored.
///
/// Recognised: `kata.debug=1|0`, `kata.transport=serial|vsock`, `kata.port=<serial port name>`,
/// `kata.shutdown=poweroff|reboot` (default: decided at shutdown, see `Config::shutdown`).
pub fn apply_cmdline(cfg: &mut Config, cmdline: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut transport: Option<String> = None;
    let mut port: Option<String> = None;

    for word in cmdline.split_whitespace() {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, v),
            None => (word, ""),
        };
        match key {
            "kata.debug" => match value {
                "1" | "true" | "" => cfg.debug = true,
                "0" | "false" => cfg.debug = false,
                other => warnings.push(format!("kata.debug={}: expected 0 or 1", other)),
            },
            "kata.transport" => transport = Some(value.to_string()),
            "kata.shutdown" => match value {
                "poweroff" => cfg.shutdown = Some(ShutdownMode::PowerOff),
                "reboot" => cfg.shutdown = Some(ShutdownMode::Reboot),
                other => warnings.push(format!("kata.shutdown={}: expected poweroff or reboot", other)),
            },
            "kata.port" => port = Some(value.to_string()),
            k if k.starts_with("kata.") => warnings.push(format!("unknown parameter {}", word)),
            _ => {}
        }
    }
    match transport.as_deref() {
        None | Some("serial") => {
            let name = port.unwrap_or_else(|| match &cfg.transport {
                TransportSpec::Serial { port } => port.clone(),
                _ => DEFAULT_SERIAL_PORT.to_string(),
            });
            if name.is_empty() || name.contains('/') {
                warnings.push(format!("kata.port={:?} is not a port name; using agent.0", name));
                cfg.transport = TransportSpec::Serial { port: DEFAULT_SERIAL_PORT.to_string() };
            } else {
                cfg.transport = TransportSpec::Serial { port: name };
            }
        }
        Some("vsock") => {
            if port.is_some() {
                warnings.push("kata.port applies to the serial transport only".to_string());
            }
            cfg.transport = TransportSpec::Vsock { port: DEFAULT_VSOCK_PORT };
        }
        Some(other) => warnings.push(format!("kata.transport={}: expected serial or vsock", other)),
    }
    warnings
}

/// Parses a `--transport` value: `serial`, `serial:NAME`, `vsock`, `vsock:PORT`, `unix:PATH`.
pub fn parse_transport(s: &str) -> Result<TransportSpec, String> {
    let (kind, arg) = match s.split_once(':') {
        Some((k, a)) => (k, Some(a)),
        None => (s, None),
    };
    match (kind, arg) {
        ("serial", None) => Ok(TransportSpec::Serial { port: DEFAULT_SERIAL_PORT.to_string() }),
        ("serial", Some(p)) if !p.is_empty() && !p.contains('/') => {
            Ok(TransportSpec::Serial { port: p.to_string() })
        }
        ("vsock", None) => Ok(TransportSpec::Vsock { port: DEFAULT_VSOCK_PORT }),
        ("vsock", Some(p)) => p
            .parse::<u32>()
            .map(|port| TransportSpec::Vsock { port })
            .map_err(|_| format!("bad vsock port {:?}", p)),
        ("unix", Some(p)) if !p.is_empty() => Ok(TransportSpec::Unix { path: PathBuf::from(p) }),
        _ => Err(format!(
            "bad transport {:?} (want serial[:NAME], vsock[:PORT] or unix:PATH)",
            s
        )),
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Cli {
    Run(CliOverrides),
    Help,
    Version,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct CliOverrides {
    pub transport: Option<TransportSpec>,
    pub crun: Option<PathBuf>,
    pub bundle_dir: Option<PathBuf>,
    pub cgroup_root: Option<PathBuf>,
    pub debug: bool,
    /// `--init`: do the PID-1 boot work even when not PID 1 (useful inside a test VM's shell).
    pub init: bool,
}

pub const USAGE: &str = "usage: kata-agent [--transport serial[:NAME]|vsock[:PORT]|unix:PATH] \
[--crun PATH] [--bundle-dir DIR] [--cgroup-root DIR] [--debug] [--init]\n\
As PID 1 it also reads kata.debug=1, kata.transport=serial|vsock, kata.port=NAME from /proc/cmdline.\n\
KATA_AGENT_CRUN=PATH selects the crun binary (flag wins).";

pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, String> {
    let mut o = CliOverrides::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| format!("{} needs a value", name)),
            }
        };
        match flag.as_str() {
            "--transport" => o.transport = Some(parse_transport(&value("--transport")?)?),
            "--crun" => o.crun = Some(PathBuf::from(value("--crun")?)),
            "--bundle-dir" => o.bundle_dir = Some(PathBuf::from(value("--bundle-dir")?)),
            "--cgroup-root" => o.cgroup_root = Some(PathBuf::from(value("--cgroup-root")?)),
            "--debug" => o.debug = true,
            "--init" => o.init = true,
            "-h" | "--help" => return Ok(Cli::Help),
            "-V" | "--version" => return Ok(Cli::Version),
            other => return Err(format!("unknown argument {:?}", other)),
        }
    }
    Ok(Cli::Run(o))
}

impl Config {
    pub fn apply_overrides(&mut self, o: CliOverrides, env_crun: Option<String>) {
        if let Some(c) = env_crun.filter(|s| !s.is_empty()) {
            self.crun = PathBuf::from(c);
        }
        if let Some(t) = o.transport {
            self.transport = t;
        }
        if let Some(c) = o.crun {
            self.crun = c;
        }
        if let Some(d) = o.bundle_dir {
            self.bundle_dir = d;
        }
        if let Some(d) = o.cgroup_root {
            self.cgroup_root = d;
        }
        if o.debug {
            self.debug = true;
        }
        if o.init {
            self.init = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_defaults_to_serial_agent0() {
        let mut c = Config::default();
        let w = apply_cmdline(&mut c, "console=ttyS0 quiet rdinit=/init\n");
        assert!(w.is_empty());
        assert_eq!(c.transport, TransportSpec::Serial { port: "agent.0".into() });
        assert!(!c.debug);
    }

    #[test]
    fn cmdline_kata_parameters() {
        let mut c = Config::default();
        let w = apply_cmdline(&mut c, "console=hvc0 kata.debug=1 kata.port=agent.7 panic=1");
        assert!(w.is_empty(), "{:?}", w);
        assert!(c.debug);
        assert_eq!(c.transport, TransportSpec::Serial { port: "agent.7".into() });

        let mut c = Config::default();
        apply_cmdline(&mut c, "kata.transport=vsock kata.debug=0");
        assert_eq!(c.transport, TransportSpec::Vsock { port: 1024 });
        assert!(!c.debug);

        let mut c = Config::default();
        apply_cmdline(&mut c, "kata.transport=serial kata.port=x");
        assert_eq!(c.transport, TransportSpec::Serial { port: "x".into() });
    }

    #[test]
    fn cmdline_shutdown_mode() {
        let mut c = Config::default();
        apply_cmdline(&mut c, "console=ttyS0");
        assert_eq!(c.shutdown, None);
        apply_cmdline(&mut c, "kata.shutdown=poweroff");
        assert_eq!(c.shutdown, Some(ShutdownMode::PowerOff));
        apply_cmdline(&mut c, "kata.shutdown=reboot");
        assert_eq!(c.shutdown, Some(ShutdownMode::Reboot));
        let w = apply_cmdline(&mut c, "kata.shutdown=explode");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn cmdline_bad_values_warn_and_keep_defaults() {
        let mut c = Config::default();
        let w = apply_cmdline(&mut c, "kata.transport=carrier-pigeon kata.debug=yes kata.foo=1");
        assert_eq!(w.len(), 3, "{:?}", w);
        assert_eq!(c.transport, TransportSpec::Serial { port: "agent.0".into() });
        assert!(!c.debug);
        let mut c = Config::default();
        let w = apply_cmdline(&mut c, "kata.port=../../x");
        assert_eq!(w.len(), 1);
        assert_eq!(c.transport, TransportSpec::Serial { port: "agent.0".into() });
    }

    #[test]
    fn transports() {
        assert_eq!(parse_transport("serial"), Ok(TransportSpec::Serial { port: "agent.0".into() }));
        assert_eq!(parse_transport("serial:p1"), Ok(TransportSpec::Serial { port: "p1".into() }));
        assert_eq!(parse_transport("vsock"), Ok(TransportSpec::Vsock { port: 1024 }));
        assert_eq!(parse_transport("vsock:5000"), Ok(TransportSpec::Vsock { port: 5000 }));
        assert_eq!(
            parse_transport("unix:/tmp/a.sock"),
            Ok(TransportSpec::Unix { path: "/tmp/a.sock".into() })
        );
        for bad in ["", "unix", "unix:", "vsock:x", "tcp:1", "serial:a/b"] {
            assert!(parse_transport(bad).is_err(), "{}", bad);
        }
    }

    #[test]
    fn args() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_args(v(&[])), Ok(Cli::Run(CliOverrides::default())));
        match parse_args(v(&["--transport", "unix:/x", "--crun=/bin/fake", "--debug", "--cgroup-root", "/cg"])) {
            Ok(Cli::Run(o)) => {
                assert_eq!(o.transport, Some(TransportSpec::Unix { path: "/x".into() }));
                assert_eq!(o.crun, Some(PathBuf::from("/bin/fake")));
                assert!(o.debug);
                let mut c = Config::default();
                assert_eq!(c.cgroup_root, PathBuf::from("/sys/fs/cgroup"));
                c.apply_overrides(o, Some("/env/crun".into()));
                assert_eq!(c.crun, PathBuf::from("/bin/fake"));
                assert_eq!(c.cgroup_root, PathBuf::from("/cg"));
            }
            other => panic!("{:?}", other),
        }
        let mut c = Config::default();
        c.apply_overrides(CliOverrides::default(), Some("/env/crun".into()));
        assert_eq!(c.crun, PathBuf::from("/env/crun"));
        assert_eq!(parse_args(v(&["--help"])), Ok(Cli::Help));
        assert!(parse_args(v(&["--transport"])).is_err());
        assert!(parse_args(v(&["--bogus"])).is_err());
    }
}
