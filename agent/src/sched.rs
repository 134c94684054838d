//! `process.ioPriority` and `process.scheduler` (runtime-spec 1.1.0): crun 1.8.1 does not know
//! them, so the agent takes them out of the spec crun gets and sets them itself on the
//! container's init after `crun create` (the init then waits on crun's exec fifo, in the
//! container, not yet running its program) and before `crun start`. Both survive execve.

use serde_json::{Map, Value};

use crate::sys;

/// What the agent applies to a container's init (src/oci/fields.ts: the `agent` rows).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InitAttrs {
    pub io_priority: Option<IoPriority>,
    pub scheduler: Option<sys::SchedAttr>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct IoPriority {
    /// IOPRIO_CLASS_RT = 1, BE = 2, IDLE = 3.
    pub class: u16,
    /// 0 (highest) … 7.
    pub level: u16,
}

impl InitAttrs {
    pub fn is_empty(&self) -> bool {
        self.io_priority.is_none() && self.scheduler.is_none()
    }

    /// Sets them on `pid`; the error names what could not be set.
    pub fn apply(&self, pid: i32) -> Result<(), String> {
        if let Some(io) = &self.io_priority {
            sys::ioprio_set(pid, io.class, io.level)
                .map_err(|e| format!("cannot set process.ioPriority of the container's init: {}", e))?;
        }
        if let Some(attr) = &self.scheduler {
            sys::sched_setattr(pid, attr)
                .map_err(|e| format!("cannot set process.scheduler of the container's init: {}", e))?;
        }
        Ok(())
    }
}

/// Removes process.ioPriority and process.scheduler from `spec` and returns them checked.
pub fn take_init_attrs(spec: &mut Value) -> Result<InitAttrs, String> {
    let process = match spec.get_mut("process").and_then(Value::as_object_mut) {
        Some(p) => p,
        None => return Ok(InitAttrs::default()),
    };
    let io_priority = match process.remove("ioPriority") {
        None | Some(Value::Null) => None,
        Some(v) => Some(io_priority(&v)?),
    };
    let scheduler = match process.remove("scheduler") {
        None | Some(Value::Null) => None,
        Some(v) => Some(scheduler(&v)?),
    };
    Ok(InitAttrs { io_priority, scheduler })
}

/// Whether a process object (exec) has either field: crun exec would not apply them.
pub fn has_init_attrs(process: &Value) -> Option<&'static str> {
    ["ioPriority", "scheduler"].into_iter().find(|k| process.get(*k).map_or(false, |v| !v.is_null()))
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("{} must be an object", what))
}

/// An integer field within [lo, hi]; absent: 0.
fn int_in(obj: &Map<String, Value>, what: &str, key: &str, lo: i64, hi: i64) -> Result<i64, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => match v.as_i64() {
            Some(n) if n >= lo && n <= hi => Ok(n),
            _ => Err(format!("{}.{} must be an integer from {} to {}", what, key, lo, hi)),
        },
    }
}

fn u64_field(obj: &Map<String, Value>, what: &str, key: &str) -> Result<u64, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| format!("{}.{} must be an unsigned integer", what, key)),
    }
}

fn io_priority(v: &Value) -> Result<IoPriority, String> {
    const WHAT: &str = "process.ioPriority";
    let obj = object(v, WHAT)?;
    let class = match obj.get("class").and_then(Value::as_str) {
        Some("IOPRIO_CLASS_RT") => 1,
        Some("IOPRIO_CLASS_BE") => 2,
        Some("IOPRIO_CLASS_IDLE") => 3,
        _ => return Err(format!("{}.class must be IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE", WHAT)),
    };
    let level = int_in(obj, WHAT, "priority", 0, 7)? as u16;
    Ok(IoPriority { class, level })
}

fn scheduler(v: &Value) -> Result<sys::SchedAttr, String> {
    const WHAT: &str = "process.scheduler";
    let obj = object(v, WHAT)?;
    // Linux's numbers (include/uapi/linux/sched.h); SCHED_ISO (4) was never merged.
    let policy = match obj.get("policy").and_then(Value::as_str) {
        Some("SCHED_OTHER") => 0,
        Some("SCHED_FIFO") => 1,
        Some("SCHED_RR") => 2,
        Some("SCHED_BATCH") => 3,
        Some("SCHED_IDLE") => 5,
        Some("SCHED_DEADLINE") => 6,
        _ => return Err(format!("{}.policy must be a Linux scheduling policy such as SCHED_OTHER", WHAT)),
    };
    let mut flags = 0u64;
    match obj.get("flags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for f in list {
                flags |= match f.as_str() {
                    Some("SCHED_FLAG_RESET_ON_FORK") => 0x01,
                    Some("SCHED_FLAG_RECLAIM") => 0x02,
                    Some("SCHED_FLAG_DL_OVERRUN") => 0x04,
                    Some("SCHED_FLAG_KEEP_POLICY") => 0x08,
                    Some("SCHED_FLAG_KEEP_PARAMS") => 0x10,
                    Some("SCHED_FLAG_UTIL_CLAMP_MIN") => 0x20,
                    Some("SCHED_FLAG_UTIL_CLAMP_MAX") => 0x40,
                    _ => return Err(format!("{}.flags: unknown flag {}", WHAT, f)),
                };
            }
        }
        Some(_) => return Err(format!("{}.flags must be an array", WHAT)),
    }
    Ok(sys::SchedAttr {
        policy,
        flags,
        nice: int_in(obj, WHAT, "nice", -20, 19)? as i32,
        priority: int_in(obj, WHAT, "priority", 0, 99)? as u32,
        runtime: u64_field(obj, WHAT, "runtime")?,
        deadline: u64_field(obj, WHAT, "deadline")?,
        period: u64_field(obj, WHAT, "period")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_both_out_of_the_spec() {
        let mut spec = json!({"ociVersion": "1.0.2", "process": {"args": ["sh"], "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 7},
            "scheduler": {"policy": "SCHED_BATCH", "nice": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}}});
        let attrs = take_init_attrs(&mut spec).expect("valid");
        assert_eq!(spec, json!({"ociVersion": "1.0.2", "process": {"args": ["sh"]}}));
        assert_eq!(attrs.io_priority, Some(IoPriority { class: 3, level: 7 }));
        assert_eq!(
            attrs.scheduler,
            Some(sys::SchedAttr { policy: 3, flags: 1, nice: 5, priority: 0, runtime: 0, deadline: 0, period: 0 })
        );
        let mut plain = json!({"process": {"args": ["sh"]}});
        assert!(take_init_attrs(&mut plain).expect("valid").is_empty());
        assert!(take_init_attrs(&mut json!({"root": {}})).expect("valid").is_empty());
    }

    #[test]
    fn refuses_what_the_kernel_would() {
        for bad in [
            json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_FOO"}}}),
            json!({"process": {"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}}}),
            json!({"process": {"ioPriority": "high"}}),
            json!({"process": {"scheduler": {"policy": "SCHED_ISO"}}}),
            json!({"process": {"scheduler": {"policy": "SCHED_OTHER", "nice": 20}}}),
            json!({"process": {"scheduler": {"policy": "SCHED_FIFO", "priority": 100}}}),
            json!({"process": {"scheduler": {"policy": "SCHED_DEADLINE", "runtime": -1}}}),
            json!({"process": {"scheduler": {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_NOPE"]}}}),
        ] {
            let mut spec = bad.clone();
            assert!(take_init_attrs(&mut spec).is_err(), "{}", bad);
        }
    }

    #[test]
    fn exec_processes_with_them_are_named() {
        assert_eq!(has_init_attrs(&json!({"args": ["sh"], "scheduler": {"policy": "SCHED_IDLE"}})), Some("scheduler"));
        assert_eq!(has_init_attrs(&json!({"args": ["sh"], "ioPriority": {"class": "IOPRIO_CLASS_BE"}})), Some("ioPriority"));
        assert_eq!(has_init_attrs(&json!({"args": ["sh"]})), None);
    }
}
