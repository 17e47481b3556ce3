// ANCHOR: head
//! Cgroups: how much the container may *use* (book: chapter 5). Namespaces decide what a
//! process can see; a cgroup caps its memory, its number of processes and its CPU time.
//! A cgroup is a directory in a special filesystem: mkdir makes one, writing a number into
//! one of its files sets a limit, writing into `cgroup.procs` moves a process in, rmdir
//! removes it.
//!
//! This file is the whole path, read as on a machine with cgroup v2, one tree at
//! /sys/fs/cgroup, as most laptops have: make the group, write the limits, let the
//! container's first process join it, report an OOM kill, remove the group. Two files
//! beside it hold the rest: `cgroup/trees.rs` finds the trees, v1 and hybrid machines
//! included, and `cgroup/robustness.rs` deals with concurrent runs and leftovers; rootless
//! runs use a cgroup delegated to the user, in `cgroup/delegated.rs`.

mod delegated;
mod robustness;
#[cfg(test)]
mod tests;
mod trees;

use std::fs;
use std::path::{Path, PathBuf};

use color_eyre::Section;
use color_eyre::eyre::{Result, WrapErr, eyre};
use nix::unistd::Uid;

use crate::limits::Limits;
use crate::narrate::{self, Show, narrate};
use trees::Tree;
// ANCHOR_END: head

// ANCHOR: Cgroup
/// The container's cgroup: a directory `byoc-<our pid>` in each cgroup tree it uses (one on
/// v2). Dropping it removes it, so a forked child must exec or exit, never drop it.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    /// v2's default parent, /byoc: removed too, when the last container leaves it.
    byoc: Option<PathBuf>,
    /// The directory with the memory controller's files, and the memory limit.
    memory: Option<(PathBuf, u64)>,
    /// Rootless: what we changed in the cgroup delegated to us, undone last.
    delegated: Option<delegated::Delegated>,
}
// ANCHOR_END: Cgroup

// ANCHOR: create
impl Cgroup {
    /// 1 of 5: make the container's cgroup and write its limits, before the container exists.
    /// `rootless`: run by a user who is not root, in the cgroup delegated to them.
    pub fn create(limits: &Limits, cgroup_parent: Option<&str>, rootless: bool) -> Result<Cgroup> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .wrap_err("cannot read /proc/self/mountinfo")?;
        let proc_cgroup =
            fs::read_to_string("/proc/self/cgroup").wrap_err("cannot read /proc/self/cgroup")?;
        Self::create_from(&mountinfo, &proc_cgroup, limits, cgroup_parent, rootless)
    }

    /// `create`, given the two /proc files: the unit tests pass those of a fake machine.
    fn create_from(
        mountinfo: &str,
        proc_cgroup: &str,
        limits: &Limits,
        cgroup_parent: Option<&str>,
        rootless: bool,
    ) -> Result<Cgroup> {
        // The trees that hold the controllers the limits need: on v2, the one tree.
        let trees = trees::find(mountinfo, proc_cgroup, limits)?;
        if rootless {
            delegated::check_v2(&trees)?;
        }
        // From here on, an error drops `cgroup`, and Drop removes what was made so far.
        let mut cgroup = Cgroup { dirs: Vec::new(), byoc: None, memory: None, delegated: None };
        for tree in &trees {
            let dir = robustness::again_if_removed(|| {
                let parent = match (rootless, cgroup_parent) {
                    (true, None) => {
                        let (own, delegated) = delegated::prepare(tree)?;
                        cgroup.delegated = Some(delegated);
                        own
                    }
                    _ => parent_dir(tree, cgroup_parent)?,
                };
                robustness::remove_stale(&parent);
                let dir = parent.join(format!("byoc-{}", std::process::id()));
                mkdir(&dir)?;
                Ok(dir)
            })?;
            cgroup.dirs.push(dir.clone());
            if tree.v2 && cgroup_parent.is_none() && !rootless {
                cgroup.byoc = dir.parent().map(Path::to_path_buf);
            }
            for (file, value) in limit_files(tree, &dir, limits) {
                let context = || format!("cannot write {value:?} to {file:?}");
                write(&file, &value).wrap_err_with(context)?;
            }
            if tree.holds("memory") {
                cgroup.memory = limits.memory.map(|limit| (dir, limit));
            }
        }
        Ok(cgroup)
    }

    /// The cgroup's directories, for the container's first process to `join`.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}
// ANCHOR_END: create

// ANCHOR: parent_dir
/// The cgroup, in one tree, that the container's cgroup goes beneath.
fn parent_dir(tree: &Tree, cgroup_parent: Option<&str>) -> Result<PathBuf> {
    let dir = match cgroup_parent {
        Some(parent) => {
            let dir = tree.mount.join(parent.trim_start_matches('/'));
            if !dir.is_dir() {
                return Err(eyre!("cgroup parent {parent:?} does not exist: no directory {dir:?}"))
                    .suggestion(format!(
                        "create it (mkdir {}) or leave out --cgroup-parent",
                        dir.display()
                    ));
            }
            dir
        }
        // v2 has the "no internal processes" rule: a cgroup with processes of its own cannot
        // hand controllers down to child cgroups (EBUSY). We run in a busy one (on a laptop,
        // the login session's scope), so the workbook keeps an empty cgroup of its own, which
        // other containers share: one of them may make it at the same moment as we do.
        None if tree.v2 => {
            let dir = tree.mount.join("byoc");
            if !dir.exists() {
                mkdir(&dir).or_else(|report| match robustness::io_error(&report) {
                    Some(std::io::ErrorKind::AlreadyExists) => Ok(()),
                    _ => Err(report),
                })?;
            }
            dir
        }
        None => trees::v1_parent(tree),
    };
    if tree.v2 {
        enable_controllers(tree, &dir)?;
    }
    Ok(dir)
}
// ANCHOR_END: parent_dir

// ANCHOR: enable_controllers
/// v2 only: a cgroup gets a controller's files only if its parent names the controller in
/// cgroup.subtree_control. So write "+memory +pids" there, from the root down to `parent`.
fn enable_controllers(tree: &Tree, parent: &Path) -> Result<()> {
    let value = tree.controllers.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
    let mut chain: Vec<&Path> =
        parent.ancestors().take_while(|d| d.starts_with(&tree.mount)).collect();
    chain.reverse();
    for dir in chain {
        let file = dir.join("cgroup.subtree_control");
        let context = || format!("cannot write {value:?} to {file:?}");
        match write(&file, &value) {
            Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
                return Err(e).wrap_err_with(context).suggestion(format!(
                    "{dir:?} has processes of its own, and v2 lets only an empty cgroup hand \
                     controllers to its children (the \"no internal processes\" rule): point \
                     --cgroup-parent at an empty cgroup"
                ));
            }
            result => result.wrap_err_with(context)?,
        }
    }
    Ok(())
}
// ANCHOR_END: enable_controllers

// ANCHOR: limit_files
/// 2 of 5: the files that set `limits` in the new cgroup `dir`, in the order to write them.
fn limit_files(tree: &Tree, dir: &Path, limits: &Limits) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let file = |name: &str, value: String| (dir.join(name), value);
    if let (Some(bytes), true) = (limits.memory, tree.holds("memory")) {
        if tree.v2 {
            files.push(file("memory.max", bytes.to_string()));
            // No swap, so that at its limit the container is OOM-killed instead of slowly
            // swapping.
            if dir.join("memory.swap.max").exists() {
                files.push(file("memory.swap.max", "0".to_string()));
            }
            // At the limit, the OOM killer kills the whole container, its init too, as
            // Kubernetes has it: then the command ends by SIGKILL (137), whichever of its
            // processes ran over.
            if dir.join("memory.oom.group").exists() {
                files.push(file("memory.oom.group", "1".to_string()));
            }
        } else {
            files.extend(trees::v1_memory_limit(dir, bytes));
        }
    }
    if let (Some(pids), true) = (limits.pids, tree.holds("pids")) {
        files.push(file("pids.max", pids.to_string()));
    }
    if let (Some(cpus), true) = (limits.cpus, tree.holds("cpu")) {
        // "At most `quota` µs of CPU time in every period": 0.5 CPUs is 50 ms of each 100 ms,
        // the kernel's default period.
        let period = 100_000;
        let quota = (cpus * period as f64).round() as u64;
        if tree.v2 {
            files.push(file("cpu.max", format!("{quota} {period}")));
        } else {
            files.extend(trees::v1_cpu_limit(dir, quota, period));
        }
    }
    files
}
// ANCHOR_END: limit_files

// ANCHOR: join
/// 3 of 5: move the calling process into the cgroups `dirs`. The container's first process calls
/// it itself, before it execs anything, so that nothing of the container runs unlimited. Call
/// it before pivot_root, while /sys/fs/cgroup is still the host's.
pub fn join(dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        // "0" means "the process that writes this" (kernel: cgroup_procs_write_start),
        // so the child need not look up its own pid.
        let context = || format!("cannot join cgroup {dir:?}");
        write(&dir.join("cgroup.procs"), "0").wrap_err_with(context)?;
    }
    Ok(())
}
// ANCHOR_END: join

// ANCHOR: oom_report
impl Cgroup {
    /// 4 of 5: after the command ended, a line telling whom the kernel's OOM killer killed, or
    /// `None` if nobody. Call it before `remove`: the counters go with the cgroup.
    pub fn oom_report(&self) -> Option<String> {
        let (dir, limit) = self.memory.as_ref()?;
        // Its counters: memory.events on v2, memory.oom_control on v1.
        let events = read_either(dir, "memory.events", "memory.oom_control")?;
        let victims = robustness::victims(&events)?;
        let mut report = format!(
            "container hit its memory limit ({}): the OOM killer killed {victims}",
            mib(*limit)
        );
        // The most memory it ever used. v2 has memory.peak only since Linux 5.19.
        let peak = read_either(dir, "memory.peak", "memory.max_usage_in_bytes");
        if let Some(peak) = peak.and_then(|text| text.trim().parse().ok()) {
            report += &format!("; peak {}", mib(peak));
        }
        Some(report)
    }
    // ANCHOR_END: oom_report

    // ANCHOR: remove
    /// 5 of 5: remove the directories. The container must be gone: rmdir refuses a cgroup that
    /// holds a process. Calling it again does nothing.
    pub fn remove(&mut self) -> Result<()> {
        let mut first_error = None;
        for dir in std::mem::take(&mut self.dirs) {
            if let Err(e) = robustness::rmdir(&dir) {
                first_error.get_or_insert(e);
            }
        }
        if let Some(byoc) = self.byoc.take() {
            // Another container may be in it still (EBUSY): then it stays, for that one.
            let _ = remove_dir(&byoc);
        }
        if let Some(delegated) = self.delegated.take()
            && let Err(e) = delegated.undo()
        {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Every way out of the runtime, errors included, removes the cgroup.
impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("warning: {e:#}");
        }
    }
}
// ANCHOR_END: remove

// ANCHOR: helpers
/// mkdir a cgroup: the kernel fills the new directory with its control files.
fn mkdir(dir: &Path) -> Result<()> {
    let call = narrate::Call::new("mkdir", vec![dir.show()]);
    let made = fs::create_dir(dir);
    call.returned(&made);
    let context = || format!("cannot create cgroup {dir:?}");
    match made {
        Err(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied && !Uid::effective().is_root() =>
        {
            Err(e).wrap_err_with(context).suggestion(
                "a user may make cgroups only in one delegated to them: run it in a scope \
                 with Delegate=yes, as `just step5` does, or as root (`sudo`)",
            )
        }
        result => result.wrap_err_with(context),
    }
}

/// Write `value` into a control file. fs::write would create a missing file, which cgroupfs
/// never allows (EACCES), but we only write files the kernel made. In the unit tests' fake
/// tree, a plain directory, the file is created, and the test reads back what was written.
fn write(file: &Path, value: &str) -> std::io::Result<()> {
    narrate!(fs::write(file, value))
}

/// rmdir a cgroup, once: it goes if no process is left in it (else EBUSY).
fn remove_dir(dir: &Path) -> std::io::Result<()> {
    let call = narrate::Call::new("rmdir", vec![dir.show()]);
    let removed = fs::remove_dir(dir);
    call.returned(&removed);
    removed
}

/// The text of `dir`/`v2_file`, or else of `dir`/`v1_file`.
fn read_either(dir: &Path, v2_file: &str, v1_file: &str) -> Option<String> {
    let text = fs::read_to_string(dir.join(v2_file));
    text.or_else(|_| fs::read_to_string(dir.join(v1_file))).ok()
}

/// 104857600 bytes → "100 MiB", 1572864 → "1.5 MiB".
fn mib(bytes: u64) -> String {
    let text = format!("{:.1}", bytes as f64 / (1 << 20) as f64);
    format!("{} MiB", text.strip_suffix(".0").unwrap_or(&text))
}
// ANCHOR_END: helpers
