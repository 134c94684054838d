//! The `network` request (docs/protocol.md, "network") and the loopback at boot.
//!
//! The host names each guest NIC by the MAC it gave QEMU's virtio-net device; the agent finds
//! that NIC, renames it, sets its MTU, brings it up, adds its addresses, then adds the routes.
//! Everything the host sent is checked before anything changes (`parse`).
//!
//! The guest's network is driven over rtnetlink: a raw NETLINK_ROUTE socket and the small
//! encoder/decoder below. Not busybox `ip`: busybox 1.35's `ip addr add` has no `nodad`, and the
//! kernel's errno (plus its extended-ack text) makes a better error line than parsing stderr.

use crate::msg::{AgentError, ErrorCode};
use crate::session::lock;
use serde_json::{Map, Value};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_INTERFACES: usize = 16;
pub const MAX_ADDRESSES: usize = 32;
pub const MAX_ROUTES: usize = 256;
/// How long `network` waits for every NIC to appear (virtio-net may still be probing).
pub const LINK_WAIT: Duration = Duration::from_secs(2);
const LINK_POLL: Duration = Duration::from_millis(50);
/// How long one netlink request waits for the kernel's answer.
const NL_TIMEOUT: Duration = Duration::from_secs(5);
/// Below this MTU the kernel disables IPv6 on the interface.
const IPV6_MIN_MTU: u64 = 1280;

/// One `network` request at a time: two interleaved ones could fight over names.
static CONFIGURING: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------------------------
// What the host asked for, checked

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
        }
    }
    fn max_prefix(self) -> u8 {
        match self {
            Family::Inet => 32,
            Family::Inet6 => 128,
        }
    }
    fn af(self) -> u8 {
        match self {
            Family::Inet => libc::AF_INET as u8,
            Family::Inet6 => libc::AF_INET6 as u8,
        }
    }
    fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Universe,
    Link,
    Host,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Universe => "universe",
            Scope::Link => "link",
            Scope::Host => "host",
        }
    }
    fn value(self) -> u8 {
        match self {
            Scope::Universe => rt::RT_SCOPE_UNIVERSE,
            Scope::Link => rt::RT_SCOPE_LINK,
            Scope::Host => rt::RT_SCOPE_HOST,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// An address with its prefix length (an interface address, or a route's destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Mac,
    pub mtu: u32,
    pub addresses: Vec<Cidr>,
}

impl Interface {
    /// The error line for a step on this interface that the kernel refused.
    fn failed(&self, what: String) -> String {
        format!("interface {} (MAC {}): {}", self.name, self.mac, what)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub family: Family,
    /// `None`: the default route.
    pub dest: Option<Cidr>,
    pub gateway: Option<IpAddr>,
    pub device: Option<String>,
    pub source: Option<IpAddr>,
    pub scope: Option<Scope>,
    pub metric: Option<u32>,
}

impl Route {
    /// As `ip route add` does: `link` for a route without a gateway, else `universe`.
    fn effective_scope(&self) -> Scope {
        match (self.scope, self.gateway) {
            (Some(s), _) => s,
            (None, Some(_)) => Scope::Universe,
            (None, None) => Scope::Link,
        }
    }

    /// `default via 172.17.0.1 dev eth0` (`-6 ...` for inet6), for error lines.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if self.family == Family::Inet6 {
            s.push_str("-6 ");
        }
        match &self.dest {
            None => s.push_str("default"),
            Some(d) => s.push_str(&d.to_string()),
        }
        if let Some(g) = &self.gateway {
            s.push_str(&format!(" via {}", g));
        }
        if let Some(d) = &self.device {
            s.push_str(&format!(" dev {}", d));
        }
        if let Some(a) = &self.source {
            s.push_str(&format!(" src {}", a));
        }
        if let Some(sc) = self.scope {
            s.push_str(&format!(" scope {}", sc.name()));
        }
        if let Some(m) = self.metric {
            s.push_str(&format!(" metric {}", m));
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
}

// ---------------------------------------------------------------------------------------------
// Validation of the request (nothing is touched until all of it passed)

/// The request's JSON, checked field by field. Errors name the field: `interfaces[0].mac: ...`.
pub fn parse(interfaces: &Value, routes: &Value) -> Result<NetConfig, String> {
    let mut ifs: Vec<Interface> = Vec::new();
    for (i, v) in array(interfaces, "interfaces", MAX_INTERFACES)?.iter().enumerate() {
        let path = format!("interfaces[{}]", i);
        let iface = parse_interface(v, &path)?;
        if let Some(j) = ifs.iter().position(|o| o.name == iface.name) {
            return Err(format!("{}.name: {} is also the name of interfaces[{}]", path, quote(&iface.name), j));
        }
        if let Some(j) = ifs.iter().position(|o| o.mac == iface.mac) {
            return Err(format!("{}.mac: {} is also the MAC of interfaces[{}]", path, iface.mac, j));
        }
        ifs.push(iface);
    }
    let mut rs = Vec::new();
    for (i, v) in array(routes, "routes", MAX_ROUTES)?.iter().enumerate() {
        rs.push(parse_route(v, &format!("routes[{}]", i), &ifs)?);
    }
    Ok(NetConfig { interfaces: ifs, routes: rs })
}

fn parse_interface(v: &Value, path: &str) -> Result<Interface, String> {
    let m = object(v, path, &["name", "mac", "mtu", "addresses"])?;
    let name = string(required(m, path, "name")?, &format!("{}.name", path))?;
    check_ifname(name).map_err(|why| format!("{}.name: {} {}", path, quote(name), why))?;
    let mac_text = string(required(m, path, "mac")?, &format!("{}.mac", path))?;
    let mac = parse_mac(mac_text).map_err(|why| format!("{}.mac: {} {}", path, quote(mac_text), why))?;
    let mtu = integer(required(m, path, "mtu")?, &format!("{}.mtu", path), 68, 65535)?;
    let mut addresses = Vec::new();
    let list = array(required(m, path, "addresses")?, &format!("{}.addresses", path), MAX_ADDRESSES)?;
    for (i, a) in list.iter().enumerate() {
        addresses.push(parse_address(a, &format!("{}.addresses[{}]", path, i))?);
    }
    if mtu < IPV6_MIN_MTU && addresses.iter().any(|a| a.addr.is_ipv6()) {
        return Err(format!(
            "{}.mtu: {} is below {}, the minimum for IPv6, and the interface has inet6 addresses",
            path, mtu, IPV6_MIN_MTU
        ));
    }
    // 68..65535 was checked, so the conversion cannot fail.
    let mtu = u32::try_from(mtu).map_err(|_| format!("{}.mtu: out of range", path))?;
    Ok(Interface { name: name.to_string(), mac, mtu, addresses })
}

fn parse_address(v: &Value, path: &str) -> Result<Cidr, String> {
    let m = object(v, path, &["family", "address", "prefixLen"])?;
    let family = parse_family(m, path)?;
    let text = string(required(m, path, "address")?, &format!("{}.address", path))?;
    let addr = parse_ip(text, family).map_err(|why| format!("{}.address: {}", path, why))?;
    if let Some(why) = not_for_interface(&addr) {
        return Err(format!("{}.address: {} is {}", path, addr, why));
    }
    let max = u64::from(family.max_prefix());
    let p = integer(required(m, path, "prefixLen")?, &format!("{}.prefixLen", path), 0, max)?;
    // p <= 128 was checked.
    let prefix_len = u8::try_from(p).map_err(|_| format!("{}.prefixLen: out of range", path))?;
    Ok(Cidr { addr, prefix_len })
}

fn parse_route(v: &Value, path: &str, ifs: &[Interface]) -> Result<Route, String> {
    let m = object(v, path, &["family", "dest", "gateway", "device", "source", "scope", "metric"])?;
    let family = parse_family(m, path)?;
    let dest_text = string(required(m, path, "dest")?, &format!("{}.dest", path))?;
    let dest = parse_dest(dest_text, family).map_err(|why| format!("{}.dest: {}", path, why))?;
    let gateway = match optional(m, "gateway") {
        None => None,
        Some(g) => {
            let text = string(g, &format!("{}.gateway", path))?;
            let ip = parse_ip(text, family).map_err(|why| format!("{}.gateway: {}", path, why))?;
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(format!("{}.gateway: {} is not a unicast address", path, ip));
            }
            Some(ip)
        }
    };
    let device = match optional(m, "device") {
        None => None,
        Some(d) => {
            let name = string(d, &format!("{}.device", path))?;
            if !ifs.iter().any(|i| i.name == name) {
                return Err(format!("{}.device: {} is not the name of one of interfaces", path, quote(name)));
            }
            Some(name.to_string())
        }
    };
    let source = match optional(m, "source") {
        None => None,
        Some(s) => {
            let text = string(s, &format!("{}.source", path))?;
            let ip = parse_ip(text, family).map_err(|why| format!("{}.source: {}", path, why))?;
            if let Some(why) = not_for_interface(&ip) {
                return Err(format!("{}.source: {} is {}", path, ip, why));
            }
            Some(ip)
        }
    };
    let scope = match optional(m, "scope") {
        None => None,
        Some(s) => Some(match s.as_str() {
            Some("universe") => Scope::Universe,
            Some("link") => Scope::Link,
            Some("host") => Scope::Host,
            _ => return Err(format!("{}.scope: expected \"universe\", \"link\" or \"host\", got {}", path, show(s))),
        }),
    };
    let metric = match optional(m, "metric") {
        None => None,
        // 0..u32::MAX was checked.
        Some(n) => Some(
            u32::try_from(integer(n, &format!("{}.metric", path), 0, u64::from(u32::MAX))?)
                .map_err(|_| format!("{}.metric: out of range", path))?,
        ),
    };
    if gateway.is_none() && device.is_none() {
        return Err(format!("{}: a route needs a gateway or a device", path));
    }
    if let (Some(IpAddr::V6(g)), None) = (&gateway, &device) {
        if is_v6_link_local(g) {
            return Err(format!("{}.gateway: {} is link-local, so the route needs a device", path, g));
        }
    }
    Ok(Route { family, dest, gateway, device, source, scope, metric })
}

fn parse_family(m: &Map<String, Value>, path: &str) -> Result<Family, String> {
    let v = required(m, path, "family")?;
    match v.as_str() {
        Some("inet") => Ok(Family::Inet),
        Some("inet6") => Ok(Family::Inet6),
        _ => Err(format!("{}.family: expected \"inet\" or \"inet6\", got {}", path, show(v))),
    }
}

/// `^[A-Za-z0-9_.-]{1,15}$`, not `lo`, `.` or `..` (IFNAMSIZ is 16 with the NUL).
pub fn check_ifname(name: &str) -> Result<(), &'static str> {
    if name.is_empty()
        || name.len() > 15
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err("is not an interface name (1 to 15 of A-Z a-z 0-9 _ . -)");
    }
    if name == "." || name == ".." {
        return Err("is not an interface name");
    }
    if name == "lo" {
        return Err("is the loopback interface, which the agent manages");
    }
    Ok(())
}

/// Six hex pairs separated by ':', unicast and not all zero.
pub fn parse_mac(s: &str) -> Result<Mac, &'static str> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err("is not a MAC address (six hex pairs separated by ':')");
    }
    let mut mac = [0u8; 6];
    for (slot, p) in mac.iter_mut().zip(&parts) {
        *slot = u8::from_str_radix(p, 16).map_err(|_| "is not a MAC address")?;
    }
    if mac[0] & 1 != 0 {
        return Err("is a multicast MAC address (lowest bit of the first octet set)");
    }
    if mac == [0u8; 6] {
        return Err("is the all-zero MAC address");
    }
    Ok(Mac(mac))
}

/// An address of exactly `family` (std's parser: no zones, no leading zeros in IPv4).
fn parse_ip(s: &str, family: Family) -> Result<IpAddr, String> {
    match (family, s.parse::<IpAddr>()) {
        (Family::Inet, Ok(ip @ IpAddr::V4(_))) | (Family::Inet6, Ok(ip @ IpAddr::V6(_))) => Ok(ip),
        (_, Ok(ip)) => Err(format!("{} is an {} address, not {}", quote(s), Family::of(&ip).name(), family.name())),
        (_, Err(_)) => Err(format!("{} is not an {} address", quote(s), family.name())),
    }
}

/// `default` or `address/prefix` of `family` with no host bits set. `None` = default.
fn parse_dest(s: &str, family: Family) -> Result<Option<Cidr>, String> {
    if s == "default" {
        return Ok(None);
    }
    let bad = || format!("{} is not \"default\" or an {} address/prefix", quote(s), family.name());
    let (addr, len) = s.split_once('/').ok_or_else(bad)?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let prefix_len: u8 = len.parse().map_err(|_| bad())?;
    if prefix_len > family.max_prefix() {
        return Err(format!(
            "{}: the prefix length is at most {} for {}",
            quote(s),
            family.max_prefix(),
            family.name()
        ));
    }
    let addr = parse_ip(addr, family)?;
    let net = network_of(&addr, prefix_len);
    if net != addr {
        return Err(format!("{} has host bits set (the network is {}/{})", quote(s), net, prefix_len));
    }
    Ok(Some(Cidr { addr, prefix_len }))
}

/// Why `ip` cannot be an interface's (or a route's source) address, if it cannot.
fn not_for_interface(ip: &IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_loopback() {
        Some("a loopback address (lo has those)")
    } else if *ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        Some("the broadcast address")
    } else {
        None
    }
}

fn is_v6_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// `ip` with every bit after the first `prefix_len` cleared.
fn network_of(ip: &IpAddr, prefix_len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = if prefix_len == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix_len.min(32))) };
            IpAddr::V4(Ipv4Addr::from(u32::from(*a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = if prefix_len == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix_len.min(128))) };
            IpAddr::V6(Ipv6Addr::from(u128::from(*a) & mask))
        }
    }
}

/// The IPv4 broadcast address of `a/prefix_len` (as `ip addr add ... brd +`); none for /31
/// and /32, which have no broadcast address.
fn broadcast_of(a: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    if prefix_len >= 31 {
        return None;
    }
    let host = if prefix_len == 0 { u32::MAX } else { u32::MAX >> u32::from(prefix_len) };
    Some(Ipv4Addr::from(u32::from(a) | host))
}

// JSON field helpers: every message names the field's path.

/// A JSON value for an error line: JSON text (so one line), at most 64 characters.
fn show(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s,
    }
}

fn quote(s: &str) -> String {
    show(&Value::String(s.to_string()))
}

fn object<'a>(v: &'a Value, path: &str, known: &[&str]) -> Result<&'a Map<String, Value>, String> {
    let m = v.as_object().ok_or_else(|| format!("{}: expected an object, got {}", path, show(v)))?;
    if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("{}: unknown field {}", path, quote(k)));
    }
    Ok(m)
}

/// A field that must be present and not null.
fn required<'a>(m: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a Value, String> {
    match m.get(key) {
        None | Some(Value::Null) => Err(format!("{}.{}: missing", path, key)),
        Some(v) => Ok(v),
    }
}

/// An optional field; null is the same as absent.
fn optional<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn string<'a>(v: &'a Value, path: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("{}: expected a string, got {}", path, show(v)))
}

fn integer(v: &Value, path: &str, lo: u64, hi: u64) -> Result<u64, String> {
    match v.as_u64() {
        Some(n) if n >= lo && n <= hi => Ok(n),
        _ => Err(format!("{}: expected an integer {}..{}, got {}", path, lo, hi, show(v))),
    }
}

fn array<'a>(v: &'a Value, path: &str, max: usize) -> Result<&'a Vec<Value>, String> {
    match v {
        Value::Null => Err(format!("{}: missing", path)),
        Value::Array(a) if a.len() > max => Err(format!("{}: {} entries, at most {}", path, a.len(), max)),
        Value::Array(a) => Ok(a),
        other => Err(format!("{}: expected an array, got {}", path, show(other))),
    }
}

// ---------------------------------------------------------------------------------------------
// Doing it

/// The `network` request: `ok {}` or E_NETWORK with the line saying what failed.
pub fn handle(interfaces: &Value, routes: &Value) -> Result<Value, AgentError> {
    let fail = |m: String| AgentError::new(ErrorCode::Network, m);
    let cfg = parse(interfaces, routes).map_err(fail)?;
    configure(&cfg).map_err(fail)?;
    let names: Vec<String> = cfg.interfaces.iter().map(|i| format!("{} ({})", i.name, i.mac)).collect();
    crate::info!("network: configured [{}] and {} routes", names.join(", "), cfg.routes.len());
    Ok(serde_json::json!({}))
}

/// Applies a checked configuration to the calling thread's network namespace.
pub fn configure(cfg: &NetConfig) -> Result<(), String> {
    let _one_at_a_time = lock(&CONFIGURING);
    let mut nl = Netlink::open().map_err(|e| format!("cannot open a netlink socket: {}", e))?;
    let links = find_links(&mut nl, &cfg.interfaces)?;
    let pairs: Vec<(&Interface, &Link)> = cfg.interfaces.iter().zip(&links).collect();

    // A NIC is renamed only while down; every NIC that changes name takes a temporary one
    // first, so two NICs can swap names.
    for (iface, link) in pairs.iter().filter(|(i, l)| i.name != l.name) {
        let at = |what: String| iface.failed(what);
        nl.request(|seq| msg_link_flags(seq, link.index, false))
            .map_err(|e| at(format!("cannot set {} down: {}", link.name, e)))?;
        let tmp = temp_name(link.index);
        nl.request(|seq| msg_link_name(seq, link.index, &tmp))
            .map_err(|e| at(format!("cannot rename {} to {}: {}", link.name, tmp, e)))?;
    }
    for (iface, link) in &pairs {
        let at = |what: String| iface.failed(what);
        if iface.name != link.name {
            nl.request(|seq| msg_link_name(seq, link.index, &iface.name))
                .map_err(|e| at(format!("cannot rename {} to {}: {}", temp_name(link.index), iface.name, e)))?;
        }
        nl.request(|seq| msg_link_mtu(seq, link.index, iface.mtu))
            .map_err(|e| at(format!("cannot set MTU {}: {}", iface.mtu, e)))?;
        nl.request(|seq| msg_link_flags(seq, link.index, true)).map_err(|e| at(format!("cannot set it up: {}", e)))?;
        for a in &iface.addresses {
            match nl.request(|seq| msg_addr_add(seq, link.index, a)) {
                Ok(()) => {}
                Err(e) if e.errno == Some(libc::EEXIST) => crate::debug!("network: {} already has {}", iface.name, a),
                Err(e) => return Err(at(format!("cannot add address {}: {}", a, e))),
            }
        }
    }
    for r in &cfg.routes {
        let oif = match &r.device {
            None => None,
            Some(d) => Some(
                pairs
                    .iter()
                    .find(|(i, _)| &i.name == d)
                    .map(|(_, l)| l.index)
                    .ok_or_else(|| format!("route {}: no interface {}", r.describe(), d))?,
            ),
        };
        match nl.request(|seq| msg_route_add(seq, r, oif)) {
            Ok(()) => {}
            Err(e) if e.errno == Some(libc::EEXIST) => crate::debug!("network: route {} exists", r.describe()),
            Err(e) => return Err(format!("route {}: {}", r.describe(), e)),
        }
    }
    Ok(())
}

/// Brings an interface up by name (`lo` at boot), in the calling thread's network namespace.
pub fn link_up(name: &str) -> Result<(), String> {
    let mut nl = Netlink::open().map_err(|e| format!("cannot open a netlink socket: {}", e))?;
    nl.request(|seq| msg_link_up_by_name(seq, name)).map_err(|e| e.to_string())
}

/// A name no NIC has: `ktmp` + the interface index in hex (at most 12 characters).
fn temp_name(index: u32) -> String {
    format!("ktmp{:x}", index)
}

/// The guest's NICs for `ifaces`, in order, polling until all have appeared or LINK_WAIT passed.
fn find_links(nl: &mut Netlink, ifaces: &[Interface]) -> Result<Vec<Link>, String> {
    let deadline = Instant::now() + LINK_WAIT;
    loop {
        let links = nl.links().map_err(|e| format!("cannot list the guest's interfaces: {}", e))?;
        match match_links(ifaces, &links) {
            Ok(found) => return Ok(found),
            Err(Mismatch::Missing(i)) => {
                if Instant::now() >= deadline {
                    let iface = &ifaces[i];
                    return Err(format!(
                        "interface {}: no guest interface with MAC {} (waited {} s)",
                        iface.name,
                        iface.mac,
                        LINK_WAIT.as_secs()
                    ));
                }
                std::thread::sleep(LINK_POLL);
            }
            Err(Mismatch::Fatal(why)) => return Err(why),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Mismatch {
    /// No link has the MAC of this interface (yet).
    Missing(usize),
    Fatal(String),
}

/// Pairs each interface with the one link that has its MAC, and checks that no link outside
/// the request holds one of the requested names.
fn match_links(ifaces: &[Interface], links: &[Link]) -> Result<Vec<Link>, Mismatch> {
    let mut found: Vec<Link> = Vec::new();
    for (i, iface) in ifaces.iter().enumerate() {
        let same: Vec<&Link> = links.iter().filter(|l| l.mac == Some(iface.mac)).collect();
        match same.as_slice() {
            [] => return Err(Mismatch::Missing(i)),
            [one] => found.push((*one).clone()),
            several => {
                let names: Vec<&str> = several.iter().map(|l| l.name.as_str()).collect();
                return Err(Mismatch::Fatal(format!(
                    "interface {}: several guest interfaces have MAC {}: {}",
                    iface.name,
                    iface.mac,
                    names.join(", ")
                )));
            }
        }
    }
    for (i, iface) in ifaces.iter().enumerate() {
        if let Some(other) = links.iter().find(|l| l.name == iface.name && !found.iter().any(|f| f.index == l.index)) {
            let mac = other.mac.map(|m| m.to_string()).unwrap_or_else(|| "none".into());
            return Err(Mismatch::Fatal(format!(
                "interfaces[{}].name: {} is the name of another guest interface (MAC {}), not in interfaces",
                i,
                quote(&iface.name),
                mac
            )));
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// rtnetlink: constants, message encoding and decoding (pure), the socket

/// Kernel ABI values (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, if.h).
mod rt {
    pub const NLMSG_HDRLEN: usize = 16;
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLMSG_DONE: u16 = 3;
    pub const NLM_F_REQUEST: u16 = 0x1;
    pub const NLM_F_ACK: u16 = 0x4;
    pub const NLM_F_DUMP_INTR: u16 = 0x10;
    pub const NLM_F_DUMP: u16 = 0x300;
    pub const NLM_F_EXCL: u16 = 0x200;
    pub const NLM_F_CREATE: u16 = 0x400;
    /// In an NLMSG_ERROR: the request is not echoed back (NETLINK_CAP_ACK).
    pub const NLM_F_CAPPED: u16 = 0x100;
    /// In an NLMSG_ERROR: extended-ack attributes follow.
    pub const NLM_F_ACK_TLVS: u16 = 0x200;
    pub const NLMSGERR_ATTR_MSG: u16 = 1;
    pub const SOL_NETLINK: libc::c_int = 270;
    pub const NETLINK_CAP_ACK: libc::c_int = 10;
    pub const NETLINK_EXT_ACK: libc::c_int = 11;

    pub const RTM_NEWLINK: u16 = 16;
    pub const RTM_GETLINK: u16 = 18;
    pub const RTM_NEWADDR: u16 = 20;
    pub const RTM_NEWROUTE: u16 = 24;
    pub const IFLA_ADDRESS: u16 = 1;
    pub const IFLA_IFNAME: u16 = 3;
    pub const IFLA_MTU: u16 = 4;
    pub const IFF_UP: u32 = 1;
    pub const IFA_ADDRESS: u16 = 1;
    pub const IFA_LOCAL: u16 = 2;
    pub const IFA_BROADCAST: u16 = 4;
    pub const IFA_F_NODAD: u8 = 0x02;
    pub const RTA_DST: u16 = 1;
    pub const RTA_OIF: u16 = 4;
    pub const RTA_GATEWAY: u16 = 5;
    pub const RTA_PRIORITY: u16 = 6;
    pub const RTA_PREFSRC: u16 = 7;
    pub const RT_TABLE_MAIN: u8 = 254;
    pub const RTPROT_BOOT: u8 = 3;
    pub const RTN_UNICAST: u8 = 1;
    pub const RT_SCOPE_UNIVERSE: u8 = 0;
    pub const RT_SCOPE_LINK: u8 = 253;
    pub const RT_SCOPE_HOST: u8 = 254;
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink message being built: header, fixed part, attributes (native byte order, as
/// the kernel expects; addresses are in network order, as their octets).
struct NlMsg(Vec<u8>);

impl NlMsg {
    fn new(ty: u16, flags: u16, seq: u32) -> NlMsg {
        let mut b = Vec::with_capacity(128);
        b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set by finish()
        b.extend_from_slice(&ty.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills in ours
        NlMsg(b)
    }
    fn fixed(mut self, data: &[u8]) -> NlMsg {
        self.0.extend_from_slice(data);
        self.0.resize(align4(self.0.len()), 0);
        self
    }
    /// Attribute payloads here are at most 17 bytes (names, addresses, u32s).
    fn attr(mut self, ty: u16, data: &[u8]) -> NlMsg {
        let len = (4 + data.len()) as u16;
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(align4(self.0.len()), 0);
        self
    }
    fn attr_u32(self, ty: u16, v: u32) -> NlMsg {
        self.attr(ty, &v.to_ne_bytes())
    }
    fn attr_str(self, ty: u16, s: &str) -> NlMsg {
        let mut z = s.as_bytes().to_vec();
        z.push(0);
        self.attr(ty, &z)
    }
    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[0..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

/// struct ifinfomsg { family, pad, type, index, flags, change }
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

fn octets(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn msg_link_dump(seq: u32) -> Vec<u8> {
    NlMsg::new(rt::RTM_GETLINK, rt::NLM_F_REQUEST | rt::NLM_F_DUMP, seq).fixed(&ifinfomsg(0, 0, 0)).finish()
}

fn msg_link_flags(seq: u32, index: u32, up: bool) -> Vec<u8> {
    let flags = if up { rt::IFF_UP } else { 0 };
    NlMsg::new(rt::RTM_NEWLINK, rt::NLM_F_REQUEST | rt::NLM_F_ACK, seq)
        .fixed(&ifinfomsg(index, flags, rt::IFF_UP))
        .finish()
}

/// Index 0 + IFLA_IFNAME: the kernel finds the link by name.
fn msg_link_up_by_name(seq: u32, name: &str) -> Vec<u8> {
    NlMsg::new(rt::RTM_NEWLINK, rt::NLM_F_REQUEST | rt::NLM_F_ACK, seq)
        .fixed(&ifinfomsg(0, rt::IFF_UP, rt::IFF_UP))
        .attr_str(rt::IFLA_IFNAME, name)
        .finish()
}

fn msg_link_name(seq: u32, index: u32, name: &str) -> Vec<u8> {
    NlMsg::new(rt::RTM_NEWLINK, rt::NLM_F_REQUEST | rt::NLM_F_ACK, seq)
        .fixed(&ifinfomsg(index, 0, 0))
        .attr_str(rt::IFLA_IFNAME, name)
        .finish()
}

fn msg_link_mtu(seq: u32, index: u32, mtu: u32) -> Vec<u8> {
    NlMsg::new(rt::RTM_NEWLINK, rt::NLM_F_REQUEST | rt::NLM_F_ACK, seq)
        .fixed(&ifinfomsg(index, 0, 0))
        .attr_u32(rt::IFLA_MTU, mtu)
        .finish()
}

/// `ip addr add A/P dev I` (+ `brd +` for IPv4, `nodad` for IPv6).
fn msg_addr_add(seq: u32, index: u32, a: &Cidr) -> Vec<u8> {
    let family = Family::of(&a.addr);
    let flags = if family == Family::Inet6 { rt::IFA_F_NODAD } else { 0 };
    // struct ifaddrmsg { family, prefixlen, flags, scope, index }
    let mut fixed = [family.af(), a.prefix_len, flags, rt::RT_SCOPE_UNIVERSE, 0, 0, 0, 0];
    fixed[4..8].copy_from_slice(&index.to_ne_bytes());
    let bytes = octets(&a.addr);
    let mut m = NlMsg::new(rt::RTM_NEWADDR, rt::NLM_F_REQUEST | rt::NLM_F_ACK | rt::NLM_F_CREATE | rt::NLM_F_EXCL, seq)
        .fixed(&fixed)
        .attr(rt::IFA_LOCAL, &bytes)
        .attr(rt::IFA_ADDRESS, &bytes);
    if let IpAddr::V4(v4) = a.addr {
        if let Some(brd) = broadcast_of(v4, a.prefix_len) {
            m = m.attr(rt::IFA_BROADCAST, &brd.octets());
        }
    }
    m.finish()
}

/// `ip route add` in the main table; `oif`: the index of the route's device.
fn msg_route_add(seq: u32, r: &Route, oif: Option<u32>) -> Vec<u8> {
    let dst_len = r.dest.map_or(0, |d| d.prefix_len);
    // struct rtmsg { family, dst_len, src_len, tos, table, protocol, scope, type, flags }
    let fixed = [
        r.family.af(),
        dst_len,
        0,
        0,
        rt::RT_TABLE_MAIN,
        rt::RTPROT_BOOT,
        r.effective_scope().value(),
        rt::RTN_UNICAST,
        0,
        0,
        0,
        0,
    ];
    let mut m =
        NlMsg::new(rt::RTM_NEWROUTE, rt::NLM_F_REQUEST | rt::NLM_F_ACK | rt::NLM_F_CREATE | rt::NLM_F_EXCL, seq)
            .fixed(&fixed);
    if let Some(d) = &r.dest {
        if d.prefix_len > 0 {
            m = m.attr(rt::RTA_DST, &octets(&d.addr));
        }
    }
    if let Some(g) = &r.gateway {
        m = m.attr(rt::RTA_GATEWAY, &octets(g));
    }
    if let Some(i) = oif {
        m = m.attr_u32(rt::RTA_OIF, i);
    }
    if let Some(s) = &r.source {
        m = m.attr(rt::RTA_PREFSRC, &octets(s));
    }
    if let Some(p) = r.metric {
        m = m.attr_u32(rt::RTA_PRIORITY, p);
    }
    m.finish()
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).and_then(|s| <[u8; 2]>::try_from(s).ok()).map(u16::from_ne_bytes)
}

fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()).map(u32::from_ne_bytes)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NlHeader {
    ty: u16,
    flags: u16,
    seq: u32,
}

/// The messages in one datagram from the kernel: (header, payload).
fn messages(buf: &[u8]) -> Result<Vec<(NlHeader, &[u8])>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let (len, ty, flags, seq) =
            match (ne_u32(buf, at), ne_u16(buf, at + 4), ne_u16(buf, at + 6), ne_u32(buf, at + 8)) {
                (Some(l), Some(t), Some(f), Some(s)) => (l as usize, t, f, s),
                _ => return Err(format!("truncated netlink header at byte {}", at)),
            };
        if len < rt::NLMSG_HDRLEN || len > buf.len() - at {
            return Err(format!("netlink message of {} bytes at byte {} of {}", len, at, buf.len()));
        }
        out.push((NlHeader { ty, flags, seq }, &buf[at + rt::NLMSG_HDRLEN..at + len]));
        at += align4(len);
    }
    Ok(out)
}

/// Attributes (type without the nested/byte-order bits, payload); stops at a malformed one.
fn attrs(buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(len), Some(ty)) = (ne_u16(buf, at), ne_u16(buf, at + 2)) {
        let len = len as usize;
        if len < 4 || len > buf.len() - at {
            break;
        }
        out.push((ty & 0x3fff, &buf[at + 4..at + len]));
        at += align4(len);
    }
    out
}

/// A NIC as RTM_NEWLINK describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Link {
    index: u32,
    name: String,
    mac: Option<Mac>,
}

fn parse_link(payload: &[u8]) -> Option<Link> {
    let index = ne_u32(payload, 4)?;
    let mut name = None;
    let mut mac = None;
    for (ty, data) in attrs(payload.get(16..)?) {
        match ty {
            rt::IFLA_IFNAME => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            rt::IFLA_ADDRESS => mac = <[u8; 6]>::try_from(data).ok().map(Mac),
            _ => {}
        }
    }
    Some(Link { index, name: name?, mac })
}

/// A failed netlink request: the kernel's errno (if it gave one) and the line for the host.
#[derive(Debug)]
struct NlError {
    errno: Option<i32>,
    text: String,
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<io::Error> for NlError {
    fn from(e: io::Error) -> NlError {
        NlError { errno: None, text: format!("netlink: {}", e) }
    }
}

impl From<String> for NlError {
    fn from(text: String) -> NlError {
        NlError { errno: None, text: format!("netlink: {}", text) }
    }
}

/// `Network is unreachable`: strerror without std's ` (os error N)`.
fn errno_text(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(cut) => s[..cut].to_string(),
        None => s,
    }
}

/// An NLMSG_ERROR payload (error, the request's header [and payload], attributes), or with
/// `done` an NLMSG_DONE one (error, attributes): `None` for success (error 0), else the errno
/// and the kernel's extended-ack message, if any.
fn parse_error(flags: u16, payload: &[u8], done: bool) -> Result<Option<NlError>, String> {
    let code = match ne_u32(payload, 0) {
        Some(c) => c as i32,
        None if done => return Ok(None),
        None => return Err("truncated netlink error".to_string()),
    };
    if code >= 0 {
        return Ok(None);
    }
    let errno = code.checked_neg().unwrap_or(libc::EINVAL);
    let mut text = errno_text(errno);
    if flags & rt::NLM_F_ACK_TLVS != 0 {
        // After the error: the request's header, and its payload unless capped.
        let echoed = if done {
            0
        } else if flags & rt::NLM_F_CAPPED != 0 {
            rt::NLMSG_HDRLEN
        } else {
            ne_u32(payload, 4).map_or(rt::NLMSG_HDRLEN, |l| l as usize)
        };
        let tlvs = payload.get(4usize.saturating_add(align4(echoed))..).unwrap_or(&[]);
        if let Some((_, m)) = attrs(tlvs).into_iter().find(|(t, _)| *t == rt::NLMSGERR_ATTR_MSG) {
            let end = m.iter().position(|&b| b == 0).unwrap_or(m.len());
            let why: String =
                String::from_utf8_lossy(&m[..end]).chars().filter(|c| !c.is_control()).take(200).collect();
            if !why.trim().is_empty() {
                text = format!("{} ({})", text, why.trim());
            }
        }
    }
    Ok(Some(NlError { errno: Some(errno), text }))
}

/// A NETLINK_ROUTE socket bound in the calling thread's network namespace.
struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

fn kernel_addr() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain integers (with a private pad field, hence zeroed()); all
    // zero is valid, and nl_pid 0 / nl_groups 0 address the kernel.
    let mut a: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    a.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    a
}

impl Netlink {
    fn open() -> io::Result<Netlink> {
        // SAFETY: socket(2) takes only integers.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: socket() just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let addr = kernel_addr();
        let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_nl of `len` bytes for the duration of the call.
        // Binding with nl_pid 0 lets the kernel pick our port id.
        let r = unsafe { libc::bind(fd.as_raw_fd(), &addr as *const libc::sockaddr_nl as *const libc::sockaddr, len) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // Best effort: the kernel's error text (4.12+), and no echo of our request in errors.
        let _ = set_int_opt(&fd, rt::SOL_NETLINK, rt::NETLINK_EXT_ACK, 1);
        let _ = set_int_opt(&fd, rt::SOL_NETLINK, rt::NETLINK_CAP_ACK, 1);
        let tv = libc::timeval { tv_sec: NL_TIMEOUT.as_secs() as libc::time_t, tv_usec: 0 };
        // SAFETY: SO_RCVTIMEO reads one timeval from the pointer, which is valid.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink { fd, seq: 0, buf: vec![0u8; 65536] })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        let addr = kernel_addr();
        let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `msg` is readable for msg.len() bytes and `addr` is a valid sockaddr_nl of
        // `len` bytes, both for the duration of the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr() as *const libc::c_void,
                msg.len(),
                0,
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != msg.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short netlink send"));
        }
        Ok(())
    }

    /// Receives one datagram from the kernel into `buf`; returns its length. Datagrams from
    /// anyone but the kernel are dropped.
    fn recv(&mut self, deadline: Instant) -> Result<usize, NlError> {
        loop {
            if Instant::now() >= deadline {
                return Err(format!("no answer from the kernel within {} s", NL_TIMEOUT.as_secs()).into());
            }
            let mut from = kernel_addr();
            let mut len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: `buf` is writable for buf.len() bytes, `from`/`len` are a valid
            // sockaddr_nl and its size, all for the duration of the call. MSG_TRUNC makes the
            // kernel return the datagram's real length, so truncation is seen.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    libc::MSG_TRUNC,
                    &mut from as *mut libc::sockaddr_nl as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        return Err(format!("no answer from the kernel within {} s", NL_TIMEOUT.as_secs()).into())
                    }
                    _ => return Err(e.into()),
                }
            }
            let n = n as usize;
            if n > self.buf.len() {
                return Err(format!("a reply of {} bytes was truncated", n).into());
            }
            if from.nl_pid != 0 {
                continue;
            }
            return Ok(n);
        }
    }

    /// Sends one request that the kernel acknowledges, and waits for its ack or error.
    fn request(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> Result<(), NlError> {
        let seq = self.next_seq();
        self.send(&build(seq))?;
        let deadline = Instant::now() + NL_TIMEOUT;
        loop {
            let n = self.recv(deadline)?;
            for (h, payload) in messages(&self.buf[..n])? {
                if h.seq == seq && h.ty == rt::NLMSG_ERROR {
                    return match parse_error(h.flags, payload, false)? {
                        None => Ok(()),
                        Some(e) => Err(e),
                    };
                }
            }
        }
    }

    /// Every link of the namespace (a dump, retried if the kernel reports it was interrupted).
    fn links(&mut self) -> Result<Vec<Link>, NlError> {
        for _ in 0..5 {
            let seq = self.next_seq();
            self.send(&msg_link_dump(seq))?;
            let deadline = Instant::now() + NL_TIMEOUT;
            let mut out = Vec::new();
            let mut interrupted = false;
            let mut done = false;
            while !done {
                let n = self.recv(deadline)?;
                for (h, payload) in messages(&self.buf[..n])? {
                    if h.seq != seq {
                        continue;
                    }
                    interrupted |= h.flags & rt::NLM_F_DUMP_INTR != 0;
                    match h.ty {
                        rt::NLMSG_DONE | rt::NLMSG_ERROR => {
                            if let Some(e) = parse_error(h.flags, payload, h.ty == rt::NLMSG_DONE)? {
                                return Err(e);
                            }
                            done = true;
                            break;
                        }
                        rt::RTM_NEWLINK => out.extend(parse_link(payload)),
                        _ => {}
                    }
                }
            }
            if !interrupted {
                return Ok(out);
            }
        }
        Err("the interface dump kept being interrupted".to_string().into())
    }
}

fn set_int_opt(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: the option value is one c_int read from a valid pointer of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The request body of docs/protocol.md (and the brief): tests/fixtures/network.json.
    fn example() -> (Value, Value) {
        let req: Value = serde_json::from_str(include_str!("../tests/fixtures/network.json")).expect("fixture");
        (req["interfaces"].clone(), req["routes"].clone())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn cidr(s: &str, p: u8) -> Cidr {
        Cidr { addr: ip(s), prefix_len: p }
    }

    fn route(family: Family, dest: Option<Cidr>) -> Route {
        Route { family, dest, gateway: None, device: None, source: None, scope: None, metric: None }
    }

    #[test]
    fn the_documented_example_parses() {
        let (i, r) = example();
        let cfg = parse(&i, &r).expect("valid");
        assert_eq!(
            cfg.interfaces,
            vec![Interface {
                name: "eth0".into(),
                mac: Mac([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]),
                mtu: 1500,
                addresses: vec![cidr("172.17.0.2", 16), cidr("fd00::2", 64)],
            }]
        );
        let eth0 = Some("eth0".to_string());
        assert_eq!(
            cfg.routes,
            vec![
                Route { gateway: Some(ip("172.17.0.1")), device: eth0.clone(), ..route(Family::Inet, None) },
                Route {
                    device: eth0.clone(),
                    scope: Some(Scope::Link),
                    ..route(Family::Inet, Some(cidr("10.9.0.0", 16)))
                },
                Route { gateway: Some(ip("fe80::1")), device: eth0, metric: Some(1024), ..route(Family::Inet6, None) },
                Route {
                    gateway: Some(ip("172.17.0.9")),
                    source: Some(ip("172.17.0.2")),
                    ..route(Family::Inet, Some(cidr("192.168.5.0", 24)))
                },
            ]
        );
        let d: Vec<String> = cfg.routes.iter().map(Route::describe).collect();
        assert_eq!(
            d,
            [
                "default via 172.17.0.1 dev eth0",
                "10.9.0.0/16 dev eth0 scope link",
                "-6 default via fe80::1 dev eth0 metric 1024",
                "192.168.5.0/24 via 172.17.0.9 src 172.17.0.2"
            ]
        );
        // Empty lists, upper-case MACs, null optional fields, the limits themselves.
        let address =
            |n: usize, a: usize| json!({"family": "inet", "address": format!("10.0.{}.{}", n, a), "prefixLen": 32});
        let many: Vec<Value> = (0..MAX_INTERFACES)
            .map(|n| {
                let addresses: Vec<Value> = (1..=MAX_ADDRESSES).map(|a| address(n, a)).collect();
                let mac = format!("02:00:00:00:00:{:02X}", n + 1);
                json!({"name": format!("n{}", n), "mac": mac, "mtu": 68, "addresses": addresses})
            })
            .collect();
        let nulls = json!({"gateway": null, "scope": null, "metric": null, "source": null});
        let routes: Vec<Value> = (0..MAX_ROUTES)
            .map(|n| {
                let mut r = json!({"family": "inet", "dest": format!("10.{}.0.0/16", n), "device": "n0"});
                for (k, v) in nulls.as_object().expect("object") {
                    r[k] = v.clone();
                }
                r
            })
            .collect();
        let cfg = parse(&Value::Array(many), &Value::Array(routes)).expect("at the limits");
        assert_eq!(cfg.interfaces[15].mac, Mac([2, 0, 0, 0, 0, 0x10]));
        assert_eq!(cfg.routes[255].effective_scope(), Scope::Link);
        assert_eq!(parse(&json!([]), &json!([])), Ok(NetConfig { interfaces: vec![], routes: vec![] }));
    }

    /// `interfaces[0]` of the example with one field replaced (or removed, for null).
    fn with_iface(key: &str, v: Value) -> Result<NetConfig, String> {
        let (mut i, r) = example();
        if v.is_null() {
            i[0].as_object_mut().expect("obj").remove(key);
        } else {
            i[0][key] = v;
        }
        parse(&i, &r)
    }

    fn with_addr(key: &str, v: Value) -> Result<NetConfig, String> {
        let (mut i, r) = example();
        if v.is_null() {
            i[0]["addresses"][0].as_object_mut().expect("obj").remove(key);
        } else {
            i[0]["addresses"][0][key] = v;
        }
        parse(&i, &r)
    }

    fn with_route(n: usize, key: &str, v: Value) -> Result<NetConfig, String> {
        let (i, mut r) = example();
        if v.is_null() {
            r[n].as_object_mut().expect("obj").remove(key);
        } else {
            r[n][key] = v;
        }
        parse(&i, &r)
    }

    fn err(r: Result<NetConfig, String>) -> String {
        r.expect_err("should be refused")
    }

    #[test]
    fn interface_fields_are_checked() {
        assert_eq!(
            err(with_iface("mac", json!("zz"))),
            "interfaces[0].mac: \"zz\" is not a MAC address (six hex pairs separated by ':')"
        );
        for bad in [
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "02-42-ac-11-00-02",
            "2:42:ac:11:00:02",
            "02:42:ac:11:00:0g",
            "02:42:ac:11:00:02 ",
            "+2:42:ac:11:00:02",
        ] {
            assert!(err(with_iface("mac", json!(bad))).contains("is not a MAC address"), "{}", bad);
        }
        assert!(err(with_iface("mac", json!("01:00:5e:00:00:01"))).contains("multicast"));
        assert!(err(with_iface("mac", json!("ff:ff:ff:ff:ff:ff"))).contains("multicast"));
        assert!(err(with_iface("mac", json!("00:00:00:00:00:00"))).contains("all-zero"));
        assert!(with_iface("mac", json!("02:42:AC:11:00:02")).is_ok());

        assert_eq!(
            err(with_iface("name", json!("a/b"))),
            "interfaces[0].name: \"a/b\" is not an interface name (1 to 15 of A-Z a-z 0-9 _ . -)"
        );
        for bad in ["", "0123456789abcdef", "eth 0", "eth0\n", "ethé", "..", ".", "lo", "a:b"] {
            assert!(err(with_iface("name", json!(bad))).starts_with("interfaces[0].name: "), "{:?}", bad);
        }
        for good in ["0123456789abcde", "net-1_a.b", "e", "..."] {
            let (mut i, _) = example();
            i[0]["name"] = json!(good);
            assert!(parse(&i, &json!([])).is_ok(), "{}", good);
        }

        assert_eq!(err(with_iface("mtu", json!(67))), "interfaces[0].mtu: expected an integer 68..65535, got 67");
        assert!(err(with_iface("mtu", json!(65536))).contains("68..65535"));
        assert_eq!(
            err(with_iface("mtu", json!("1500"))),
            "interfaces[0].mtu: expected an integer 68..65535, got \"1500\""
        );
        assert!(err(with_iface("mtu", json!(1500.5))).contains("68..65535"));
        assert!(err(with_iface("mtu", json!(-1))).contains("68..65535"));
        // IPv6 needs 1280.
        assert!(err(with_iface("mtu", json!(1279))).contains("the minimum for IPv6"));
        let (mut i, r) = example();
        i[0]["mtu"] = json!(576);
        i[0]["addresses"] = json!([{ "family": "inet", "address": "172.17.0.2", "prefixLen": 16 }]);
        assert!(parse(&i, &r).is_ok());

        for key in ["name", "mac", "mtu", "addresses"] {
            assert_eq!(err(with_iface(key, Value::Null)), format!("interfaces[0].{}: missing", key));
        }
        assert_eq!(err(with_iface("nmae", json!("x"))), "interfaces[0]: unknown field \"nmae\"");
        assert_eq!(err(with_iface("addresses", json!({}))), "interfaces[0].addresses: expected an array, got {}");
        assert_eq!(err(with_iface("name", json!(7))), "interfaces[0].name: expected a string, got 7");
    }

    #[test]
    fn address_fields_are_checked() {
        assert_eq!(
            err(with_addr("prefixLen", json!(33))),
            "interfaces[0].addresses[0].prefixLen: expected an integer 0..32, got 33"
        );
        assert!(with_addr("prefixLen", json!(32)).is_ok());
        assert_eq!(
            err(with_addr("address", json!("fd00::2"))),
            "interfaces[0].addresses[0].address: \"fd00::2\" is an inet6 address, not inet"
        );
        assert_eq!(
            err(with_addr("address", json!("172.17.0"))),
            "interfaces[0].addresses[0].address: \"172.17.0\" is not an inet address"
        );
        for bad in ["172.17.0.2/16", " 172.17.0.2", "172.017.0.2", "fe80::1%eth0", ""] {
            assert!(err(with_addr("address", json!(bad))).contains("is not an inet address"), "{}", bad);
        }
        for (bad, why) in [
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("127.0.0.2", "loopback"),
            ("255.255.255.255", "broadcast"),
        ] {
            assert!(err(with_addr("address", json!(bad))).contains(why), "{}", bad);
        }
        assert!(err(with_addr("family", json!("ipv4"))).contains("expected \"inet\" or \"inet6\", got \"ipv4\""));
        for key in ["family", "address", "prefixLen"] {
            assert_eq!(err(with_addr(key, Value::Null)), format!("interfaces[0].addresses[0].{}: missing", key));
        }
        let (mut i, r) = example();
        i[0]["addresses"][1]["prefixLen"] = json!(129);
        assert!(err(parse(&i, &r)).contains("expected an integer 0..128, got 129"));
        i[0]["addresses"][1] = json!({"family":"inet6","address":"ff02::1","prefixLen":64});
        assert!(err(parse(&i, &r)).contains("multicast"));
        i[0]["addresses"][1] = json!({"family":"inet6","address":"::1","prefixLen":128});
        assert!(err(parse(&i, &r)).contains("loopback"));
    }

    #[test]
    fn route_fields_are_checked() {
        assert_eq!(
            err(with_route(0, "device", json!("eth9"))),
            "routes[0].device: \"eth9\" is not the name of one of interfaces"
        );
        assert!(err(with_route(0, "device", json!("lo"))).contains("is not the name of one of interfaces"));
        assert_eq!(
            err(with_route(0, "gateway", json!("fd00::1"))),
            "routes[0].gateway: \"fd00::1\" is an inet6 address, not inet"
        );
        assert!(err(with_route(2, "gateway", json!("172.17.0.1"))).contains("is an inet address, not inet6"));
        assert!(err(with_route(0, "gateway", json!("0.0.0.0"))).contains("not a unicast address"));
        assert!(err(with_route(0, "gateway", json!("224.0.0.1"))).contains("not a unicast address"));
        assert!(err(with_route(3, "source", json!("fd00::2"))).contains("routes[3].source"));
        assert!(err(with_route(3, "source", json!("0.0.0.0"))).contains("unspecified"));
        assert_eq!(
            err(with_route(1, "scope", json!("site"))),
            "routes[1].scope: expected \"universe\", \"link\" or \"host\", got \"site\""
        );
        assert!(with_route(1, "scope", json!("host")).is_ok());
        assert!(err(with_route(2, "metric", json!(4294967296u64))).contains("expected an integer 0..4294967295"));
        assert!(err(with_route(2, "metric", json!("1024"))).contains("routes[2].metric"));
        assert!(with_route(2, "metric", json!(0)).is_ok());

        assert_eq!(
            err(with_route(1, "dest", json!("10.9.0.5/16"))),
            "routes[1].dest: \"10.9.0.5/16\" has host bits set (the network is 10.9.0.0/16)"
        );
        assert_eq!(
            err(with_route(1, "dest", json!("10.9.0.0"))),
            "routes[1].dest: \"10.9.0.0\" is not \"default\" or an inet address/prefix"
        );
        for bad in [
            "10.9.0.0/",
            "10.9.0.0/+16",
            "10.9.0.0/016x",
            "10.9.0.0/1234",
            "/16",
            "Default",
            "fd00::/64",
            "10.9.0.0/33",
        ] {
            assert!(err(with_route(1, "dest", json!(bad))).starts_with("routes[1].dest: "), "{}", bad);
        }
        assert!(with_route(1, "dest", json!("0.0.0.0/0")).is_ok());
        assert!(with_route(1, "dest", json!("10.9.0.7/32")).is_ok());
        assert!(err(with_route(2, "dest", json!("fd00::1/64"))).contains("host bits"));
        assert!(with_route(2, "dest", json!("fd00::/8")).is_ok());
        assert!(err(with_route(2, "dest", json!("fd00::/129"))).contains("at most 128"));

        assert_eq!(err(with_route(1, "device", Value::Null)), "routes[1]: a route needs a gateway or a device");
        assert_eq!(
            err(with_route(2, "device", Value::Null)),
            "routes[2].gateway: fe80::1 is link-local, so the route needs a device"
        );
        assert!(with_route(0, "device", Value::Null).is_ok());
        for key in ["family", "dest"] {
            assert_eq!(err(with_route(0, key, Value::Null)), format!("routes[0].{}: missing", key));
        }
        assert_eq!(err(with_route(0, "gw", json!("172.17.0.1"))), "routes[0]: unknown field \"gw\"");
        assert_eq!(
            err(with_route(0, "device", json!(["eth0"]))),
            "routes[0].device: expected a string, got [\"eth0\"]"
        );
    }

    #[test]
    fn lists_are_checked() {
        let (i, r) = example();
        assert_eq!(err(parse(&Value::Null, &r)), "interfaces: missing");
        assert_eq!(err(parse(&i, &Value::Null)), "routes: missing");
        assert_eq!(err(parse(&json!({"eth0":{}}), &r)), "interfaces: expected an array, got {\"eth0\":{}}");
        assert_eq!(err(parse(&json!(["eth0"]), &r)), "interfaces[0]: expected an object, got \"eth0\"");
        assert_eq!(err(parse(&i, &json!("default"))), "routes: expected an array, got \"default\"");

        let too_many_routes = Value::Array(vec![r[0].clone(); MAX_ROUTES + 1]);
        assert_eq!(err(parse(&i, &too_many_routes)), "routes: 257 entries, at most 256");
        let too_many_ifs = Value::Array(vec![i[0].clone(); MAX_INTERFACES + 1]);
        assert_eq!(err(parse(&too_many_ifs, &r)), "interfaces: 17 entries, at most 16");
        let mut many_addrs = i.clone();
        many_addrs[0]["addresses"] = Value::Array(vec![i[0]["addresses"][0].clone(); MAX_ADDRESSES + 1]);
        assert_eq!(err(parse(&many_addrs, &r)), "interfaces[0].addresses: 33 entries, at most 32");

        let mut two = json!([i[0].clone(), i[0].clone()]);
        assert_eq!(err(parse(&two, &r)), "interfaces[1].name: \"eth0\" is also the name of interfaces[0]");
        two[1]["name"] = json!("eth1");
        two[1]["mac"] = json!("02:42:AC:11:00:02");
        assert_eq!(err(parse(&two, &r)), "interfaces[1].mac: 02:42:ac:11:00:02 is also the MAC of interfaces[0]");
        two[1]["mac"] = json!("02:42:ac:11:00:03");
        assert!(parse(&two, &r).is_ok());
    }

    #[test]
    fn hostile_values_give_one_short_line() {
        let long = "x\n".repeat(10_000);
        for e in [
            err(with_iface("mac", json!(long))),
            err(with_iface("name", json!(long))),
            err(with_iface("mtu", json!({ "a": long }))),
            err(with_route(1, "dest", json!(long))),
            err(with_iface(&long, json!(1))),
        ] {
            assert!(!e.contains('\n') && e.len() < 200, "{}", e);
        }
    }

    #[test]
    fn address_arithmetic() {
        assert_eq!(network_of(&ip("10.9.1.5"), 16), ip("10.9.0.0"));
        assert_eq!(network_of(&ip("10.9.1.5"), 0), ip("0.0.0.0"));
        assert_eq!(network_of(&ip("10.9.1.5"), 32), ip("10.9.1.5"));
        assert_eq!(network_of(&ip("fd00::1:2"), 112), ip("fd00::1:0"));
        assert_eq!(network_of(&ip("fd00::1"), 0), ip("::"));
        assert_eq!(broadcast_of(Ipv4Addr::new(172, 17, 0, 2), 16), Some(Ipv4Addr::new(172, 17, 255, 255)));
        assert_eq!(broadcast_of(Ipv4Addr::new(10, 0, 0, 1), 30), Some(Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(broadcast_of(Ipv4Addr::new(10, 0, 0, 1), 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast_of(Ipv4Addr::new(10, 0, 0, 1), 31), None);
        assert_eq!(broadcast_of(Ipv4Addr::new(10, 0, 0, 1), 32), None);
        assert!(is_v6_link_local(&"fe80::1".parse().expect("v6")));
        assert!(is_v6_link_local(&"febf::1".parse().expect("v6")));
        assert!(!is_v6_link_local(&"fec0::1".parse().expect("v6")));
    }

    #[test]
    fn constants_match_libc() {
        assert_eq!(i32::from(rt::NLMSG_ERROR), libc::NLMSG_ERROR);
        assert_eq!(i32::from(rt::NLMSG_DONE), libc::NLMSG_DONE);
        assert_eq!(i32::from(rt::NLM_F_REQUEST), libc::NLM_F_REQUEST);
        assert_eq!(i32::from(rt::NLM_F_ACK), libc::NLM_F_ACK);
        assert_eq!(i32::from(rt::NLM_F_DUMP), libc::NLM_F_DUMP);
        assert_eq!(i32::from(rt::NLM_F_DUMP_INTR), libc::NLM_F_DUMP_INTR);
        assert_eq!(i32::from(rt::NLM_F_EXCL), libc::NLM_F_EXCL);
        assert_eq!(i32::from(rt::NLM_F_CREATE), libc::NLM_F_CREATE);
        assert_eq!(rt::NETLINK_EXT_ACK, libc::NETLINK_EXT_ACK);
        assert_eq!(rt::NETLINK_CAP_ACK, libc::NETLINK_CAP_ACK);
        assert_eq!(
            [rt::RTM_NEWLINK, rt::RTM_GETLINK, rt::RTM_NEWADDR, rt::RTM_NEWROUTE],
            [libc::RTM_NEWLINK, libc::RTM_GETLINK, libc::RTM_NEWADDR, libc::RTM_NEWROUTE]
        );
        assert_eq!(
            [rt::IFLA_ADDRESS, rt::IFLA_IFNAME, rt::IFLA_MTU],
            [libc::IFLA_ADDRESS, libc::IFLA_IFNAME, libc::IFLA_MTU]
        );
        assert_eq!(
            [rt::IFA_ADDRESS, rt::IFA_LOCAL, rt::IFA_BROADCAST],
            [libc::IFA_ADDRESS, libc::IFA_LOCAL, libc::IFA_BROADCAST]
        );
        assert_eq!(u32::from(rt::IFA_F_NODAD), libc::IFA_F_NODAD);
        assert_eq!(
            [rt::RTA_DST, rt::RTA_OIF, rt::RTA_GATEWAY, rt::RTA_PRIORITY, rt::RTA_PREFSRC],
            [libc::RTA_DST, libc::RTA_OIF, libc::RTA_GATEWAY, libc::RTA_PRIORITY, libc::RTA_PREFSRC]
        );
        assert_eq!(
            [
                rt::RT_TABLE_MAIN,
                rt::RTPROT_BOOT,
                rt::RTN_UNICAST,
                rt::RT_SCOPE_UNIVERSE,
                rt::RT_SCOPE_LINK,
                rt::RT_SCOPE_HOST
            ],
            [
                libc::RT_TABLE_MAIN,
                libc::RTPROT_BOOT,
                libc::RTN_UNICAST,
                libc::RT_SCOPE_UNIVERSE,
                libc::RT_SCOPE_LINK,
                libc::RT_SCOPE_HOST
            ]
        );
        assert_eq!(rt::IFF_UP as libc::c_int, libc::IFF_UP);
        assert_eq!(rt::NLMSG_HDRLEN, std::mem::size_of::<libc::nlmsghdr>());
    }

    // Byte layouts below are x86_64's (little-endian), the agent's only target.

    #[test]
    fn link_messages() {
        assert_eq!(
            msg_link_flags(7, 5, true),
            [
                32, 0, 0, 0, 16, 0, 5, 0, 7, 0, 0, 0, 0, 0, 0, 0, /* ifinfomsg */ 0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0,
                0, 1, 0, 0, 0
            ]
        );
        assert_eq!(&msg_link_flags(7, 5, false)[24..32], &[0, 0, 0, 0, 1, 0, 0, 0]);
        // "eth0\0" in an attribute of 9 bytes, padded to 12.
        assert_eq!(
            msg_link_name(1, 3, "eth0"),
            [
                44, 0, 0, 0, 16, 0, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0,
                3, 0, b'e', b't', b'h', b'0', 0, 0, 0, 0
            ]
        );
        assert_eq!(&msg_link_mtu(1, 3, 1500)[32..], &[8, 0, 4, 0, 0xdc, 0x05, 0, 0]);
        let lo = msg_link_up_by_name(2, "lo");
        assert_eq!(&lo[16..32], &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&lo[32..], &[7, 0, 3, 0, b'l', b'o', 0, 0]);
        assert_eq!(
            msg_link_dump(9),
            [32, 0, 0, 0, 18, 0, 0x01, 0x03, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(temp_name(u32::MAX), "ktmpffffffff");
        assert!(check_ifname(&temp_name(u32::MAX)).is_ok());
    }

    #[test]
    fn address_messages() {
        assert_eq!(
            msg_addr_add(1, 2, &cidr("172.17.0.2", 16)),
            [
                48, 0, 0, 0, 20, 0, 0x05, 0x06, 1, 0, 0, 0, 0, 0, 0, 0, // RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE
                2, 16, 0, 0, 2, 0, 0, 0, // AF_INET /16, no flags, universe, index 2
                8, 0, 2, 0, 172, 17, 0, 2, // IFA_LOCAL
                8, 0, 1, 0, 172, 17, 0, 2, // IFA_ADDRESS
                8, 0, 4, 0, 172, 17, 255, 255 // IFA_BROADCAST
            ]
        );
        let v6 = msg_addr_add(1, 2, &cidr("fd00::2", 64));
        assert_eq!(v6.len(), 64);
        assert_eq!(&v6[16..24], &[10, 64, 2, 0, 2, 0, 0, 0]); // AF_INET6, nodad
        let a = attrs(&v6[24..]);
        let fd00_2 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        assert_eq!(a, vec![(rt::IFA_LOCAL, &fd00_2[..]), (rt::IFA_ADDRESS, &fd00_2[..])]);
        assert_eq!(msg_addr_add(1, 2, &cidr("10.0.0.1", 32)).len(), 40, "no broadcast for /32");
    }

    /// (rtmsg bytes, attributes) of an encoded route.
    fn decode_route(m: &[u8]) -> ([u8; 12], Vec<(u16, Vec<u8>)>) {
        let msgs = messages(m).expect("one message");
        assert_eq!(msgs.len(), 1);
        let (h, payload) = msgs[0];
        assert_eq!((h.ty, h.flags), (rt::RTM_NEWROUTE, 0x605));
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize, m.len());
        let fixed: [u8; 12] = payload[..12].try_into().expect("rtmsg");
        (fixed, attrs(&payload[12..]).into_iter().map(|(t, d)| (t, d.to_vec())).collect())
    }

    #[test]
    fn route_messages() {
        let (i, r) = example();
        let cfg = parse(&i, &r).expect("valid");
        let (f, a) = decode_route(&msg_route_add(1, &cfg.routes[0], Some(5)));
        assert_eq!(f, [2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]); // inet default, main, boot, universe, unicast
        assert_eq!(a, vec![(rt::RTA_GATEWAY, vec![172, 17, 0, 1]), (rt::RTA_OIF, vec![5, 0, 0, 0])]);

        let (f, a) = decode_route(&msg_route_add(1, &cfg.routes[1], Some(5)));
        assert_eq!(f, [2, 16, 0, 0, 254, 3, 253, 1, 0, 0, 0, 0]); // /16, scope link
        assert_eq!(a, vec![(rt::RTA_DST, vec![10, 9, 0, 0]), (rt::RTA_OIF, vec![5, 0, 0, 0])]);

        let (f, a) = decode_route(&msg_route_add(1, &cfg.routes[2], Some(5)));
        assert_eq!(&f[..2], &[10, 0]);
        let mut fe80_1 = vec![0xfe, 0x80];
        fe80_1.extend_from_slice(&[0; 13]);
        fe80_1.push(1);
        assert_eq!(
            a,
            vec![
                (rt::RTA_GATEWAY, fe80_1),
                (rt::RTA_OIF, vec![5, 0, 0, 0]),
                (rt::RTA_PRIORITY, 1024u32.to_ne_bytes().to_vec())
            ]
        );

        let (f, a) = decode_route(&msg_route_add(1, &cfg.routes[3], None));
        assert_eq!(f, [2, 24, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0]);
        assert_eq!(
            a,
            vec![
                (rt::RTA_DST, vec![192, 168, 5, 0]),
                (rt::RTA_GATEWAY, vec![172, 17, 0, 9]),
                (rt::RTA_PREFSRC, vec![172, 17, 0, 2])
            ]
        );
        // An explicit scope wins; 0.0.0.0/0 is sent like default (no RTA_DST).
        let host = Route {
            scope: Some(Scope::Host),
            device: Some("eth0".into()),
            ..route(Family::Inet, Some(cidr("0.0.0.0", 0)))
        };
        let (f, a) = decode_route(&msg_route_add(1, &host, Some(5)));
        assert_eq!((f[1], f[6]), (0, 254));
        assert_eq!(a, vec![(rt::RTA_OIF, vec![5, 0, 0, 0])]);
    }

    fn newlink(index: u32, name: &str, mac: Option<[u8; 6]>) -> Vec<u8> {
        let mut m =
            NlMsg::new(rt::RTM_NEWLINK, 0x2, 4).fixed(&ifinfomsg(index, 0x1003, 0)).attr_u32(rt::IFLA_MTU, 1500);
        if let Some(mac) = mac {
            m = m.attr(rt::IFLA_ADDRESS, &mac);
        }
        m.attr_str(rt::IFLA_IFNAME, name).finish()
    }

    #[test]
    fn link_dump_decoding() {
        let mut buf = newlink(1, "lo", Some([0; 6]));
        buf.extend(newlink(2, "eth0", Some([2, 0x42, 0xac, 0x11, 0, 2])));
        buf.extend(newlink(3, "tun0", None));
        buf.extend(NlMsg::new(rt::NLMSG_DONE, 0x2, 4).fixed(&0u32.to_ne_bytes()).finish());
        let msgs = messages(&buf).expect("valid");
        assert_eq!(msgs.len(), 4);
        let links: Vec<Link> =
            msgs.iter().filter(|(h, _)| h.ty == rt::RTM_NEWLINK).filter_map(|(_, p)| parse_link(p)).collect();
        assert_eq!(
            links,
            vec![
                Link { index: 1, name: "lo".into(), mac: Some(Mac([0; 6])) },
                Link { index: 2, name: "eth0".into(), mac: Some(Mac([2, 0x42, 0xac, 0x11, 0, 2])) },
                Link { index: 3, name: "tun0".into(), mac: None },
            ]
        );
        assert_eq!(msgs[3].0, NlHeader { ty: rt::NLMSG_DONE, flags: 2, seq: 4 });
        assert!(parse_error(2, msgs[3].1, true).expect("done").is_none());
        assert!(parse_error(2, &[], true).expect("old kernel: empty DONE").is_none());

        // Truncated or lying input never panics.
        for n in 0..buf.len() {
            if let Ok(ms) = messages(&buf[..n]) {
                for (_, p) in ms {
                    let _ = parse_link(p);
                    let _ = parse_error(0x300, p, false);
                }
            }
            let _ = parse_link(&buf[..n]);
            let _ = parse_error(0x300, &buf[..n], false);
            let _ = parse_error(0x200, &buf[..n], true);
        }
        let mut lying = newlink(2, "eth0", None);
        lying[0] = 200;
        assert!(messages(&lying).is_err());
        lying[0] = 8;
        assert!(messages(&lying).is_err());
        let mut bad_attr = newlink(2, "eth0", None);
        bad_attr[32] = 0xff; // the first attribute's length runs past the end
        let (_, p) = messages(&bad_attr).expect("header ok")[0];
        assert_eq!(parse_link(p), None, "no name");
    }

    #[test]
    fn error_decoding() {
        let ack = NlMsg::new(rt::NLMSG_ERROR, 0x100, 3).fixed(&0i32.to_ne_bytes()).fixed(&[0u8; 16]).finish();
        let (h, p) = messages(&ack).expect("ack")[0];
        assert!(parse_error(h.flags, p, false).expect("valid").is_none());

        let plain = (-libc::ENETUNREACH).to_ne_bytes();
        let e = parse_error(0, &plain, false).expect("valid").expect("error");
        assert_eq!((e.errno, e.text.as_str()), (Some(libc::ENETUNREACH), "Network is unreachable"));

        // NETLINK_CAP_ACK + NETLINK_EXT_ACK: error, the request's header, the message attribute.
        let mut echoed_header = [0u8; 16];
        echoed_header[..4].copy_from_slice(&44u32.to_ne_bytes());
        let capped = NlMsg::new(rt::NLMSG_ERROR, 0x300, 3)
            .fixed(&(-libc::ENETUNREACH).to_ne_bytes())
            .fixed(&echoed_header)
            .attr_str(rt::NLMSGERR_ATTR_MSG, "Nexthop has invalid gateway")
            .finish();
        let (h, p) = messages(&capped).expect("valid")[0];
        let e = parse_error(h.flags, p, false).expect("valid").expect("error");
        assert_eq!(e.text, "Network is unreachable (Nexthop has invalid gateway)");
        // Not capped: the whole request (44 bytes) is echoed before the attributes.
        let uncapped = NlMsg::new(rt::NLMSG_ERROR, 0x200, 3)
            .fixed(&(-libc::EEXIST).to_ne_bytes())
            .fixed(&echoed_header)
            .fixed(&[0xaa; 28])
            .attr_str(rt::NLMSGERR_ATTR_MSG, "exists\n\u{7}")
            .finish();
        let (h, p) = messages(&uncapped).expect("valid")[0];
        let e = parse_error(h.flags, p, false).expect("valid").expect("error");
        assert_eq!((e.errno, e.text.as_str()), (Some(libc::EEXIST), "File exists (exists)"));
        // A DONE carrying an error and a message (no echoed request).
        let done = NlMsg::new(rt::NLMSG_DONE, 0x202, 3)
            .fixed(&(-libc::EINVAL).to_ne_bytes())
            .attr_str(rt::NLMSGERR_ATTR_MSG, "bad filter")
            .finish();
        let (h, p) = messages(&done).expect("valid")[0];
        assert_eq!(parse_error(h.flags, p, true).expect("valid").expect("error").text, "Invalid argument (bad filter)");
        assert!(parse_error(0, &[1, 2], false).is_err());
        assert_eq!(errno_text(libc::EPERM), "Operation not permitted");
    }

    fn iface(name: &str, last: u8) -> Interface {
        Interface { name: name.into(), mac: Mac([2, 0, 0, 0, 0, last]), mtu: 1500, addresses: vec![] }
    }

    fn link(index: u32, name: &str, last: Option<u8>) -> Link {
        Link { index, name: name.into(), mac: last.map(|l| Mac([2, 0, 0, 0, 0, l])) }
    }

    #[test]
    fn links_are_matched_by_mac() {
        let lo = Link { index: 1, name: "lo".into(), mac: Some(Mac([0; 6])) };
        let guest = vec![lo.clone(), link(2, "eth0", Some(0xb)), link(3, "eth1", Some(0xa)), link(4, "sit0", None)];
        // Swapped names are fine (configure() renames through temporary names).
        let want = [iface("eth0", 0xa), iface("eth1", 0xb)];
        assert_eq!(match_links(&want, &guest), Ok(vec![guest[2].clone(), guest[1].clone()]));
        assert_eq!(match_links(&[iface("eth0", 0xa), iface("eth2", 0xc)], &guest), Err(Mismatch::Missing(1)));
        assert_eq!(match_links(&[], &guest), Ok(vec![]));
        // Only one interface is configured: its name must not be another NIC's.
        assert_eq!(
            match_links(&[iface("eth0", 0xa)], &guest),
            Err(Mismatch::Fatal(
                "interfaces[0].name: \"eth0\" is the name of another guest interface (MAC 02:00:00:00:00:0b), not in interfaces"
                    .into()
            ))
        );
        assert!(match_links(&[iface("sit0", 0xa)], &guest).is_err());
        let twice = vec![link(2, "eth0", Some(0xa)), link(3, "eth1", Some(0xa))];
        assert_eq!(
            match_links(&[iface("eth0", 0xa)], &twice),
            Err(Mismatch::Fatal(
                "interface eth0: several guest interfaces have MAC 02:00:00:00:00:0a: eth0, eth1".into()
            ))
        );
    }

    #[test]
    fn handle_maps_failures_to_e_network() {
        let (mut i, r) = example();
        i[0]["mac"] = json!("zz");
        let e = handle(&i, &r).expect_err("bad mac");
        assert_eq!(e.code, ErrorCode::Network);
        assert!(e.message.starts_with("interfaces[0].mac: \"zz\" is not a MAC address"));
    }
}
