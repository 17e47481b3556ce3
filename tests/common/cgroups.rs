//! Where the cgroups are: this test process's memory cgroup, whether memory is a v1
//! controller, and the cgroups the workbook made.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::host::mount_table;

/// The workbook's cgroups (`byoc-PID`) anywhere in the host's cgroup trees:
/// step 5 makes them, and must remove them.
pub fn workbook_cgroups() -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, found: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                if entry.file_name().to_string_lossy().starts_with("byoc-") {
                    found.insert(entry.path());
                }
                walk(&entry.path(), found);
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(Path::new("/sys/fs/cgroup"), &mut found);
    found
}

/// The directory of the memory cgroup this test process runs in, in a v1 tree
/// (`/sys/fs/cgroup/memory/…`) or in the v2 one (`/sys/fs/cgroup/…`).
pub fn own_memory_cgroup() -> Option<PathBuf> {
    let lines = fs::read_to_string("/proc/self/cgroup").ok()?;
    let (v1, v2) = lines.lines().fold((None, None), |(v1, v2), line| {
        let mut fields = line.splitn(3, ':').skip(1);
        match (fields.next(), fields.next()) {
            (Some(""), Some(path)) => (v1, Some(path.to_string())),
            (Some(list), Some(path)) if list.split(',').any(|c| c == "memory") => {
                (Some(path.to_string()), v2)
            }
            _ => (v1, v2),
        }
    });
    let dir = match (v1, v2) {
        (Some(path), _) => format!("/sys/fs/cgroup/memory{path}"),
        (None, Some(path)) => format!("/sys/fs/cgroup{path}"),
        (None, None) => return None,
    };
    Some(PathBuf::from(dir))
}

/// Whether the memory controller is in a cgroup v1 tree (v1 or hybrid, as on
/// the CI machines), rather than v2 (most laptops). At its limit, v2 kills the
/// whole container; v1 kills one process, and the command may live on.
pub fn memory_on_cgroup_v1() -> bool {
    let mountinfo = mount_table();
    mountinfo.lines().any(|line| {
        line.contains(" - cgroup ") && line.split([' ', ',']).any(|word| word == "memory")
    })
}

/// A busy loop for 2 to 3 seconds of wall time, timed by busybox's `time`: what a CPU limit
/// is judged by. Wall time, not a count of turns, which a fast machine finishes in too little
/// CPU time to judge.
pub const BUSY_LOOP: &str = "time sh -c 'end=$(($(date +%s) + 3)); while [ $(date +%s) -lt $end ]; \
                             do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done'";

/// From `BUSY_LOOP`'s output: the CPU time it had (user and system) and its wall time, in
/// seconds. Its share of a CPU is the one over the other: a busy machine can lower that share,
/// never raise it, so a bound on it is the limit's alone.
pub fn cpu_and_wall_time(output: &str) -> Option<(f64, f64)> {
    // "real\t0m 3.24s", "user\t0m 0.82s", "sys\t0m 0.00s"
    let seconds = |name: &str| -> Option<f64> {
        let line = output.lines().find(|line| line.starts_with(name))?;
        let (minutes, seconds) = line[name.len()..].trim().split_once("m ")?;
        let seconds: f64 = seconds.trim_end_matches('s').parse().ok()?;
        Some(minutes.parse::<f64>().ok()? * 60.0 + seconds)
    };
    Some((seconds("user")? + seconds("sys")?, seconds("real")?))
}
