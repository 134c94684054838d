//! `network` against the real kernel: in a new network namespace of the test's own thread,
//! veth pairs stand in for the guest's virtio-net NICs. Needs root (CAP_NET_ADMIN), unshare and
//! iproute2's `ip` (to make the veths and to look at the result); skipped otherwise.

use kata_agent::net;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

/// Moves the calling thread (only) into a new network namespace.
fn enter_new_netns() -> bool {
    // SAFETY: unshare(CLONE_NEWNET) takes a flag and changes only this thread's namespace;
    // children spawned from this thread inherit it.
    unsafe { libc::unshare(libc::CLONE_NEWNET) == 0 }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {:?}: {}", args, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn usable() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: not root");
        return false;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("skipped: no `ip`");
        return false;
    }
    if !enter_new_netns() {
        eprintln!("skipped: unshare(CLONE_NEWNET) failed");
        return false;
    }
    let ok = Command::new("ip")
        .args(["link", "add", "probe0", "type", "veth", "peer", "name", "probe1"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: cannot create veth pairs");
        return false;
    }
    ip(&["link", "del", "probe0"]);
    true
}

/// tests/fixtures/network.json (docs/protocol.md's example) with another MTU, the MAC in upper
/// case and a second interface.
fn config() -> (serde_json::Value, serde_json::Value) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/network.json")).expect("fixture");
    let req: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut interfaces = req["interfaces"].clone();
    interfaces[0]["mtu"] = json!(1400);
    interfaces[0]["mac"] = json!("02:42:AC:11:00:02");
    interfaces
        .as_array_mut()
        .expect("array")
        .push(json!({ "name": "eth1", "mac": "02:42:ac:11:00:0b", "mtu": 1500, "addresses": [] }));
    (interfaces, req["routes"].clone())
}

#[test]
fn network_in_a_netns() {
    if !usable() {
        return;
    }
    net::link_up("lo").expect("lo up");
    assert!(ip(&["-o", "link", "show", "lo"]).contains(",UP"), "lo is up");
    assert!(ip(&["-o", "addr", "show", "dev", "lo"]).contains("127.0.0.1/8"));

    // The kernel named them the other way round: the agent swaps the names.
    ip(&["link", "add", "eth1", "address", "02:42:ac:11:00:02", "type", "veth", "peer", "name", "p0"]);
    ip(&["link", "add", "eth0", "address", "02:42:ac:11:00:0b", "type", "veth", "peer", "name", "p1"]);
    ip(&["link", "set", "p0", "up"]);
    ip(&["link", "set", "p1", "up"]);

    let (interfaces, routes) = config();
    net::handle(&interfaces, &routes).expect("network");
    let eth0 = ip(&["-o", "link", "show", "eth0"]);
    assert!(eth0.contains("02:42:ac:11:00:02") && eth0.contains("mtu 1400") && eth0.contains(",UP"), "{}", eth0);
    assert!(ip(&["-o", "link", "show", "eth1"]).contains("02:42:ac:11:00:0b"));
    let addrs = ip(&["-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains("inet 172.17.0.2/16 brd 172.17.255.255"), "{}", addrs);
    let v6 = addrs.lines().find(|l| l.contains("inet6 fd00::2/64")).unwrap_or_else(|| panic!("{}", addrs));
    assert!(v6.contains("nodad") && !v6.contains("tentative"), "usable at once: {}", v6);
    let r4 = ip(&["route", "show"]);
    assert!(r4.contains("default via 172.17.0.1 dev eth0"), "{}", r4);
    assert!(r4.contains("10.9.0.0/16 dev eth0 scope link"), "{}", r4);
    assert!(r4.contains("192.168.5.0/24 via 172.17.0.9 dev eth0 src 172.17.0.2"), "{}", r4);
    let r6 = ip(&["-6", "route", "show"]);
    assert!(r6.contains("default via fe80::1 dev eth0 metric 1024"), "{}", r6);

    // Again: nothing to rename, addresses and routes exist already (EEXIST is not an error).
    net::handle(&interfaces, &routes).expect("network, again");

    // The kernel's refusal names the route and carries its reason.
    let e = net::handle(
        &interfaces,
        &json!([{ "family": "inet", "dest": "default", "gateway": "10.99.0.1", "device": "eth0", "metric": 7 }]),
    )
    .expect_err("unreachable gateway");
    assert_eq!(e.code.as_str(), "E_NETWORK");
    assert!(
        e.message.starts_with("route default via 10.99.0.1 dev eth0 metric 7: Network is unreachable"),
        "{}",
        e.message
    );

    // A MAC no NIC has: waits LINK_WAIT, then says so.
    let t = Instant::now();
    let e =
        net::handle(&json!([{ "name": "eth2", "mac": "02:00:00:00:00:99", "mtu": 1500, "addresses": [] }]), &json!([]))
            .expect_err("no such MAC");
    assert!(t.elapsed() >= net::LINK_WAIT && t.elapsed() < net::LINK_WAIT + Duration::from_secs(2));
    assert_eq!(e.message, "interface eth2: no guest interface with MAC 02:00:00:00:00:99 (waited 2 s)");

    // A requested name that a NIC outside the request has: refused before anything changes.
    let e =
        net::handle(&json!([{ "name": "p0", "mac": "02:42:ac:11:00:02", "mtu": 1500, "addresses": [] }]), &json!([]))
            .expect_err("name taken");
    assert!(
        e.message.starts_with("interfaces[0].name: \"p0\" is the name of another guest interface"),
        "{}",
        e.message
    );
    assert!(ip(&["-o", "link", "show", "eth0"]).contains("mtu 1400"), "eth0 untouched");
}
