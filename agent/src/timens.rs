//! The container's time namespace (runtime-spec 1.1.0: a `time` entry in linux.namespaces and
//! linux.timeOffsets). crun 1.8.1 cannot create one together with a new pid namespace: it forks
//! once more to enter the time namespace, and the process that exits after that fork is the new
//! pid namespace's init, so the kernel kills the container's init with it ("write to sync socket:
//! Broken pipe"). So the agent takes the time entry out of crun's spec and runs `crun create` in
//! a new time namespace of its own, offsets written before any process is in it; crun's children,
//! the container among them, are created in it. `crun exec` joins the init's time namespace.

use std::ffi::CString;
use std::fs::File;
use std::path::Path;

use serde_json::Value;

/// crun's own annotation for the offsets (used when linux.timeOffsets is not given).
const ANNOTATION: &str = "run.oci.timens_offset";

/// Removes a `time` namespace entry and linux.timeOffsets from `spec`; returns the offsets to
/// write (`monotonic <secs> <nanosecs>` lines, possibly none) when there was such an entry.
pub fn take_time_namespace(spec: &mut Value) -> Result<Option<CString>, String> {
    let linux = match spec.get_mut("linux").and_then(Value::as_object_mut) {
        Some(l) => l,
        None => return Ok(None),
    };
    let offsets = linux.remove("timeOffsets");
    let mut found = false;
    if let Some(list) = linux.get_mut("namespaces").and_then(Value::as_array_mut) {
        for ns in list.iter() {
            if ns.get("type").and_then(Value::as_str) == Some("time") {
                if ns.get("path").map_or(false, |p| !p.is_null()) {
                    return Err("linux.namespaces: joining a time namespace by path is not supported".to_string());
                }
                found = true;
            }
        }
        list.retain(|ns| ns.get("type").and_then(Value::as_str) != Some("time"));
    }
    if !found {
        return match offsets {
            Some(v) if !v.is_null() => Err("linux.timeOffsets needs a time namespace in linux.namespaces".to_string()),
            _ => Ok(None),
        };
    }
    let text = match offsets {
        Some(v) if !v.is_null() => format_offsets(&v)?,
        _ => spec
            .get("annotations")
            .and_then(|a| a.get(ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    };
    CString::new(text).map(Some).map_err(|_| format!("{} must not contain a NUL byte", ANNOTATION))
}

fn format_offsets(v: &Value) -> Result<String, String> {
    let obj = v.as_object().ok_or("linux.timeOffsets must be an object")?;
    let mut lines = Vec::new();
    for clock in ["monotonic", "boottime"] {
        let o = match obj.get(clock) {
            None | Some(Value::Null) => continue,
            Some(o) => o,
        };
        let secs = match o.get("secs") {
            None | Some(Value::Null) => 0,
            Some(s) => s.as_i64().ok_or_else(|| format!("linux.timeOffsets.{}.secs must be an integer", clock))?,
        };
        let nanos = match o.get("nanosecs") {
            None | Some(Value::Null) => 0,
            Some(n) => match n.as_u64() {
                Some(n) if n < 1_000_000_000 => n,
                _ => return Err(format!("linux.timeOffsets.{}.nanosecs must be 0 to 999999999", clock)),
            },
        };
        lines.push(format!("{} {} {}", clock, secs, nanos));
    }
    Ok(lines.join("\n"))
}

/// The time namespace of `pid` when it is not the agent's own (the container has one).
pub fn other_time_namespace(pid: i32) -> Option<File> {
    let theirs = Path::new("/proc").join(pid.to_string()).join("ns/time");
    let same = match (std::fs::read_link(&theirs), std::fs::read_link("/proc/self/ns/time")) {
        (Ok(a), Ok(b)) => a == b,
        _ => true,
    };
    if same {
        return None;
    }
    File::open(theirs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_the_entry_and_the_offsets() {
        let mut spec = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "time"}],
            "timeOffsets": {"monotonic": {"secs": 1000000}, "boottime": {"secs": -5, "nanosecs": 7}}}});
        let text = take_time_namespace(&mut spec).expect("valid").expect("a time namespace");
        assert_eq!(text.to_str().ok(), Some("monotonic 1000000 0\nboottime -5 7"));
        assert_eq!(spec, json!({"linux": {"namespaces": [{"type": "pid"}]}}));

        let mut annotated = json!({"annotations": {"run.oci.timens_offset": "monotonic 3 0"}, "linux": {"namespaces": [{"type": "time"}]}});
        assert_eq!(take_time_namespace(&mut annotated).expect("valid").expect("ns").to_str().ok(), Some("monotonic 3 0"));
        let mut bare = json!({"linux": {"namespaces": [{"type": "time"}]}});
        assert_eq!(take_time_namespace(&mut bare).expect("valid").expect("ns").to_bytes(), b"");
        let mut none = json!({"linux": {"namespaces": [{"type": "pid"}]}});
        assert_eq!(take_time_namespace(&mut none).expect("valid"), None);
    }

    #[test]
    fn refuses_what_cannot_be_done() {
        for bad in [
            json!({"linux": {"namespaces": [{"type": "pid"}], "timeOffsets": {"monotonic": {"secs": 1}}}}),
            json!({"linux": {"namespaces": [{"type": "time", "path": "/proc/1/ns/time"}]}}),
            json!({"linux": {"namespaces": [{"type": "time"}], "timeOffsets": {"monotonic": {"nanosecs": 1000000000}}}}),
            json!({"linux": {"namespaces": [{"type": "time"}], "timeOffsets": {"boottime": {"secs": "1"}}}}),
        ] {
            let mut spec = bad.clone();
            assert!(take_time_namespace(&mut spec).is_err(), "{}", bad);
        }
    }
}
