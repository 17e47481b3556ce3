//! What a real runtime must also get right (book: chapter 5, "robustness"): containers
//! that race each other for the shared /byoc, a cgroup left behind by a runtime killed with
//! SIGKILL, a cgroup that the kernel calls busy for a moment after its last process died, and
//! what the OOM counters really count. `cgroup.rs` calls each of these where it needs it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use color_eyre::eyre::{Report, Result, WrapErr, bail};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use super::remove_dir;

/// Run `make`, which makes the container's cgroup beneath its parent, and run it again if the
/// parent vanished meanwhile. v2's /byoc is shared by the containers that run at once, and the
/// last to leave removes it: if that happens between our mkdir of /byoc and of byoc-PID, the
/// second fails with ENOENT, and a second try makes /byoc anew. (Docker never removes its
/// /docker, and so never meets this; we remove /byoc, to leave the machine as we found it.)
pub fn again_if_removed(mut make: impl FnMut() -> Result<PathBuf>) -> Result<PathBuf> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match make() {
            Err(report) if attempt < 10 && io_error(&report) == Some(ErrorKind::NotFound) => {}
            made => return made,
        }
    }
}

/// Remove `byoc-<pid>` cgroups in `parent` whose runtime is gone: one killed by SIGKILL could
/// not clean up. Only empty ones go, as rmdir refuses a cgroup that still has processes. One
/// with our own PID is stale too, whatever kill() says: its runtime had our PID before us.
pub fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|name| name.strip_prefix("byoc-"));
        let Some(pid) = pid.and_then(|pid| pid.parse::<i32>().ok()).filter(|&pid| pid > 0) else {
            continue;
        };
        // kill() without a signal only asks whether the process exists.
        if pid == std::process::id() as i32 || kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
            let _ = remove_dir(&entry.path());
        }
    }
}

/// rmdir a cgroup, trying again on EBUSY for up to 1 s: just after its last process died the
/// kernel may still call it busy. Already gone counts as removed.
pub fn rmdir(dir: &Path) -> Result<()> {
    for _ in 0..100 {
        match remove_dir(dir) {
            Err(e) if e.kind() == ErrorKind::ResourceBusy => sleep(Duration::from_millis(10)),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            result => return result.wrap_err_with(|| format!("cannot remove cgroup {dir:?}")),
        }
    }
    bail!("cgroup {dir:?} is still busy after 1 s")
}

/// Who the OOM killer killed, from the memory controller's event counters, or `None` if it
/// killed nothing. Both versions count kills as `oom_kill N`; v2's memory.oom.group kills the
/// whole container at once and counts it as `oom_group_kill`, but then counts its first victim
/// twice in `oom_kill` (Linux 6.1): say what happened rather than a wrong number.
pub fn victims(events: &str) -> Option<String> {
    // The space after oom_kill leaves out v1's "oom_kill_disable 0".
    let count = |name: &str| events.lines().find_map(|l| l.strip_prefix(name)?.parse::<u64>().ok());
    match (count("oom_group_kill ").unwrap_or(0), count("oom_kill ")?) {
        (_, 0) => None,
        (1.., _) => Some("the whole container".to_string()),
        (0, 1) => Some("1 process".to_string()),
        (0, killed) => Some(format!("{killed} processes")),
    }
}

/// The kind of the I/O error at the root of `report`, if it is one.
pub fn io_error(report: &Report) -> Option<ErrorKind> {
    report.root_cause().downcast_ref::<std::io::Error>().map(std::io::Error::kind)
}
