//! What a run must leave as it was on the host: the processes, mounts and cgroups of *its
//! own*, so that other containers on the machine, Docker's say, neither fail a run nor hide a
//! leak. One run at a time holds the host (`HostState`).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, Once};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::cgroups::workbook_cgroups;
use super::project::{PROJECT, require_root, scratch_dir};
use super::run::{Step, as_a_learner};

/// This process's mount table.
pub fn mount_table() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// The lines of `mountinfo` whose mount point a container of ours could touch:
/// `/` and the host's own /proc, /sys, /dev and /tmp (a step without a mount
/// namespace would mount there), and anything beneath this checkout or our
/// scratch directories. Another runtime's mounts (Docker's overlays under
/// /var/lib/docker, its network namespaces under /run) are not ours to judge.
fn our_mounts(mountinfo: &str) -> BTreeSet<String> {
    // mountinfo writes a space in a path as \040.
    let escape = |path: &Path| path.display().to_string().replace(' ', r"\040");
    let project = escape(Path::new(PROJECT));
    let host = ["/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/tmp", "/run"];
    // scratch_dir(NAME) is TMP/byoc-NAME-PID, ours whatever the NAME.
    let (temp, pid) = (escape(&std::env::temp_dir()), std::process::id());
    let scratch = |point: &str| {
        let Some(rest) = point.strip_prefix(&temp).and_then(|rest| rest.strip_prefix('/')) else {
            return false;
        };
        let first = rest.split('/').next().unwrap_or_default();
        first.starts_with("byoc-") && first.ends_with(&format!("-{pid}"))
    };
    let ours = |point: &str| host.contains(&point) || point.starts_with(&project) || scratch(point);
    let lines = mountinfo.lines().filter(|line| line.split(' ').nth(4).is_some_and(ours));
    lines.map(str::to_string).collect()
}

/// A child process of ours, as /proc/PID/stat tells.
#[derive(Debug)]
struct Orphan {
    pid: i32,
    state: char,
    command: String,
}

/// Our own child processes. Every test process is a child subreaper
/// (PR_SET_CHILD_SUBREAPER): a process that outlives the run that started it
/// is re-parented to us, not to the host's init. So what a run leaves behind
/// becomes our child, and another runtime's processes never do.
fn our_children() -> Vec<Orphan> {
    let us = std::process::id().to_string();
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        // PID (COMMAND) STATE PPID …: the command may hold spaces and parentheses.
        let Some((head, tail)) = stat.rsplit_once(") ") else { continue };
        let fields: Vec<&str> = tail.split(' ').collect();
        if fields.get(1) == Some(&us.as_str()) {
            let (pid, command) = head.split_once(" (").unwrap_or((head, ""));
            let state = fields[0].chars().next().unwrap_or('?');
            let command = command.to_string();
            children.push(Orphan { pid: pid.parse().unwrap(), state, command });
        }
    }
    children
}

/// Make this test process the reaper of all that its runs leave behind.
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        nix::sys::prctl::set_child_subreaper(true).expect("PR_SET_CHILD_SUBREAPER");
    });
}

/// One container at a time: tests run in parallel threads, and another test's
/// container must not look like one this test leaked. Every process a test
/// starts, it starts while holding this (through `HostState`). (Nor may
/// another thread's fork hold open the binary that `RootlessCheckout` copies:
/// ETXTBSY.)
pub(super) static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Whether the runtime that a `byoc-PID` cgroup is named after has gone, or is
/// a child of ours: then the cgroup is left over from one of our runs. A live
/// runtime elsewhere (a learner's container in another terminal) owns its own.
fn left_by_us(cgroup: &Path) -> bool {
    let name = cgroup.file_name().unwrap_or_default().to_string_lossy();
    let Some(pid) = name.strip_prefix("byoc-").and_then(|pid| pid.parse::<i32>().ok()) else {
        return false;
    };
    kill(Pid::from_raw(pid), None).is_err() || our_children().iter().any(|c| c.pid == pid)
}

/// What a run must leave as it was on the host: what it may have touched of
/// the mount table, no process of its own, no cgroup of its own.
pub struct HostState {
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<PathBuf>,
    /// Our children before the run: not the run's (the other runtime of tests/harness.rs).
    children: BTreeSet<i32>,
    _turn: MutexGuard<'static, ()>,
}

impl HostState {
    pub fn now() -> HostState {
        require_root();
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        become_subreaper();
        HostState {
            mounts: our_mounts(&mount_table()),
            cgroups: workbook_cgroups(),
            children: our_children().iter().map(|child| child.pid).collect(),
            _turn: turn,
        }
    }

    pub fn assert_unchanged(&self, step: &str) {
        let left = self.processes_left();
        assert!(left.is_empty(), "{step} left processes running: {left:?}");
        let (before, after) = (&self.mounts, our_mounts(&mount_table()));
        let gone: Vec<&String> = before.difference(&after).collect();
        let new: Vec<&String> = after.difference(before).collect();
        assert!(
            gone.is_empty() && new.is_empty(),
            "{step} changed the host's mount table:\n- {gone:#?}\n+ {new:#?}"
        );
        let new = workbook_cgroups();
        let left: Vec<&PathBuf> =
            new.difference(&self.cgroups).filter(|cgroup| left_by_us(cgroup)).collect();
        assert!(left.is_empty(), "{step} left cgroups behind: {left:?}");
    }

    /// Our children now that were not before: we hold the lock, so none of
    /// them is another test's run. Reap the dead ones (a killed runtime's init
    /// waits as a zombie), give the live ones a moment (a PID namespace takes a
    /// moment to end), then SIGKILL what is still there, so that the next test
    /// starts clean, and return it.
    pub fn processes_left(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let mut children = our_children();
            children.retain(|child| !self.children.contains(&child.pid));
            for zombie in children.iter().filter(|child| child.state == 'Z') {
                let _ = waitpid(Pid::from_raw(zombie.pid), None);
            }
            let alive: Vec<Orphan> =
                children.into_iter().filter(|child| child.state != 'Z').collect();
            if alive.is_empty() {
                return Vec::new();
            }
            if Instant::now() > deadline {
                for orphan in &alive {
                    let _ = kill(Pid::from_raw(orphan.pid), Signal::SIGKILL);
                    let _ = waitpid(Pid::from_raw(orphan.pid), None);
                }
                return alive.iter().map(|o| format!("{} ({})", o.pid, o.command)).collect();
            }
            sleep(Duration::from_millis(10));
        }
    }
}

/// Run the step on a host whose `/` is *shared*, like a systemd machine's, in a
/// mount namespace of its own, and check that the run left that namespace's
/// mount table exactly as it was. Returns the run's exit status.
pub fn run_on_shared_root(step: &Step, args: &[&str]) -> i32 {
    let host = HostState::now();
    let script = r#"cat /proc/self/mountinfo > "$0.before"
"$@" >/dev/null 2>&1; status=$?
cat /proc/self/mountinfo > "$0.after"
exit $status"#;
    let tables = scratch_dir(&format!("shared-{}", step.name));
    let status = as_a_learner(Command::new("unshare"))
        .args(["--mount", "--propagation", "shared", "sh", "-c", script])
        .arg(&tables)
        .arg(step.exe)
        .args(args)
        .status()
        .unwrap();
    let read = |suffix: &str| {
        let path = tables.with_extension(suffix);
        let table = fs::read_to_string(&path).unwrap();
        fs::remove_file(&path).unwrap();
        table
    };
    let (before, after) = (read("before"), read("after"));
    assert!(before.contains(" / / ") && before.contains("shared:"), "/ is not shared:\n{before}");
    // Another runtime's mounts on the host reach this namespace too: it is a peer.
    let (before, after) = (our_mounts(&before), our_mounts(&after));
    let new: Vec<&String> = after.difference(&before).collect();
    assert_eq!(after, before, "{} leaked mounts on a shared root: {new:#?}", step.name);
    host.assert_unchanged(step.name);
    status.code().unwrap()
}
