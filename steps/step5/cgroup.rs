//! Cgroups: how much the container may *use* (book: chapter 5). Namespaces decide what a
//! process can see; a cgroup caps its memory, its number of processes and its CPU time.
//! A cgroup is a directory in a special filesystem: mkdir makes one, writing a number into
//! one of its files sets a limit, writing into `cgroup.procs` moves a process in, rmdir
//! removes it.
//!
//! There are two versions. v1 mounts one tree per controller (/sys/fs/cgroup/memory, ...);
//! v2 mounts a single tree for all of them (/sys/fs/cgroup). "Hybrid" machines mount both,
//! and each controller works in exactly one of the trees, so we look it up per controller.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use color_eyre::Section;
use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::narrate;

// ANCHOR: Limits
/// The limits asked for on the command line; `None` means "no limit".
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub memory: Option<u64>,
    pub pids: Option<u64>,
    pub cpus: Option<f64>,
}
// ANCHOR_END: Limits

/// The stretch of time a CPU quota is measured against: 100 ms, the kernel's default.
const CPU_PERIOD_US: u64 = 100_000;

// ANCHOR: parse_size
/// Parse a memory size for clap: bytes, or a number with k, m or g (1024-based).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, unit) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower.as_str(), 1),
    };
    match number.parse::<u64>().ok().and_then(|n| n.checked_mul(unit)) {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(format!(
            "invalid size {text:?}: expected bytes or a number with k, m or g, like 100m"
        )),
    }
}
// ANCHOR_END: parse_size

/// Parse a number of CPUs for clap: 0.5 means half of one CPU's time.
pub fn parse_cpus(text: &str) -> Result<f64, String> {
    // The kernel refuses a quota below 1 ms per 100 ms period, i.e. 0.01 CPUs.
    match text.trim().parse::<f64>() {
        Ok(cpus) if cpus.is_finite() && cpus >= 0.01 => Ok(cpus),
        _ => Err(format!("invalid number of CPUs {text:?}: expected at least 0.01, like 0.5 or 2")),
    }
}

/// Parse a maximum number of processes for clap.
pub fn parse_pids(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(pids) if pids > 0 => Ok(pids),
        _ => Err(format!("invalid number of processes {text:?}: expected at least 1, like 20")),
    }
}

/// One mounted cgroup tree.
#[derive(Debug)]
struct Mount {
    v2: bool,
    path: PathBuf,
    /// v1: the mount options, like "rw,cpu,cpuacct"; v2: its cgroup.controllers, like "cpu io".
    controllers: String,
}

impl Mount {
    fn holds(&self, controller: &str) -> bool {
        self.controllers.split([',', ' ', '\n']).any(|c| c == controller)
    }
}

// ANCHOR: mounts
/// The cgroup trees in /proc/self/mountinfo, whose lines look like
/// `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory`:
/// the 5th field is the mount point; after the "-" come the type, the source and the options.
fn mounts(mountinfo: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(dash), Some(path)) = (fields.iter().position(|&f| f == "-"), fields.get(4))
        else {
            continue;
        };
        let path = PathBuf::from(path);
        let controllers = match fields.get(dash + 1) {
            Some(&"cgroup") => fields[fields.len() - 1].to_string(),
            Some(&"cgroup2") => {
                fs::read_to_string(path.join("cgroup.controllers")).unwrap_or_default()
            }
            _ => continue,
        };
        let v2 = fields[dash + 1] == "cgroup2";
        mounts.push(Mount { v2, path, controllers });
    }
    mounts
}
// ANCHOR_END: mounts

// ANCHOR: layout
/// "v1", "v2", "hybrid" (both: systemd's way before v2 became the default) or "none".
fn layout(mounts: &[Mount]) -> &'static str {
    match (mounts.iter().any(|m| !m.v2), mounts.iter().any(|m| m.v2)) {
        (true, true) => "hybrid",
        (true, false) => "v1",
        (false, true) => "v2",
        (false, false) => "none",
    }
}
// ANCHOR_END: layout

/// A cgroup tree we use: the controllers we need from it, and the cgroup we run in there.
#[derive(Debug)]
struct Hierarchy {
    v2: bool,
    mount: PathBuf,
    controllers: Vec<&'static str>,
    own: String,
}

// ANCHOR: hierarchies
/// For each controller the limits need, the tree that holds it. On a hybrid machine the v2
/// tree is mounted too, but it holds only what its cgroup.controllers lists.
fn hierarchies(mounts: &[Mount], proc_cgroup: &str, limits: &Limits) -> Result<Vec<Hierarchy>> {
    let wanted = [
        ("memory", limits.memory.is_some()),
        ("pids", limits.pids.is_some()),
        ("cpu", limits.cpus.is_some()),
    ];
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    for (controller, _) in wanted.into_iter().filter(|&(_, wanted)| wanted) {
        let Some(mount) = mounts.iter().find(|m| m.holds(controller)) else {
            return Err(eyre!(
                "no cgroup tree offers the {controller} controller (layout: {})",
                layout(mounts)
            ))
            .suggestion(
                "leave out that limit; `grep cgroup /proc/self/mountinfo` shows the trees",
            );
        };
        match hierarchies.iter_mut().find(|h| h.mount == mount.path) {
            Some(hierarchy) => hierarchy.controllers.push(controller),
            None => hierarchies.push(Hierarchy {
                v2: mount.v2,
                mount: mount.path.clone(),
                controllers: vec![controller],
                own: own_cgroup(proc_cgroup, mount)?,
            }),
        }
    }
    Ok(hierarchies)
}
// ANCHOR_END: hierarchies

// ANCHOR: own_cgroup
/// The cgroup we run in, in `mount`'s tree. /proc/self/cgroup has a line per tree:
/// `4:memory:/process_api/1f3c` for v1 (controllers in the middle), `0::/user.slice/...` for v2.
fn own_cgroup(proc_cgroup: &str, mount: &Mount) -> Result<String> {
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':').skip(1);
        let (Some(controllers), Some(path)) = (fields.next(), fields.next()) else {
            continue;
        };
        let same_tree = match mount.v2 {
            true => controllers.is_empty(),
            false => controllers.split(',').any(|c| mount.holds(c)),
        };
        if same_tree {
            return Ok(path.to_string());
        }
    }
    bail!("/proc/self/cgroup has no line for the cgroup tree at {:?}", mount.path)
}
// ANCHOR_END: own_cgroup

// ANCHOR: parent_dir
/// The cgroup, in one tree, that the container's cgroup goes beneath (book: chapter 5).
fn parent_dir(h: &Hierarchy, cgroup_parent: Option<&str>, verbose: bool) -> Result<PathBuf> {
    let dir = match cgroup_parent {
        Some(parent) => {
            let dir = h.mount.join(parent.trim_start_matches('/'));
            if !dir.is_dir() {
                return Err(eyre!("cgroup parent {parent:?} does not exist: no directory {dir:?}"))
                    .suggestion(format!(
                        "create it (mkdir {}) or leave out --cgroup-parent",
                        dir.display()
                    ));
            }
            dir
        }
        // v1: a cgroup may hold processes and child cgroups at once, so the container's
        // cgroup simply goes beneath the one we run in.
        None if !h.v2 => h.mount.join(h.own.trim_start_matches('/')),
        // v2 has the "no internal processes" rule: a cgroup with processes of its own cannot
        // hand controllers down to child cgroups (EBUSY). We run in a busy one (on a laptop,
        // the login session's scope), so the workbook keeps an empty cgroup of its own.
        // Other containers share it: one of them may make it at the same moment as we do.
        None => {
            let dir = h.mount.join("byoc");
            if !dir.exists() {
                mkdir(&dir, verbose).or_else(|report| match io_error(&report) {
                    Some(ErrorKind::AlreadyExists) => Ok(()),
                    _ => Err(report),
                })?;
            }
            dir
        }
    };
    if h.v2 {
        enable_controllers(h, &dir, verbose)?;
    }
    Ok(dir)
}
// ANCHOR_END: parent_dir

// ANCHOR: enable_controllers
/// v2 only: a cgroup gets a controller's files only if its parent names the controller in
/// cgroup.subtree_control. So write "+memory +pids" there, from the root down to `parent`.
fn enable_controllers(h: &Hierarchy, parent: &Path, verbose: bool) -> Result<()> {
    let value = h.controllers.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
    let mut chain: Vec<&Path> =
        parent.ancestors().take_while(|d| d.starts_with(&h.mount)).collect();
    chain.reverse();
    for dir in chain {
        let file = dir.join("cgroup.subtree_control");
        let context = || format!("failed to write {value:?} to {file:?}");
        match write(&file, &value, verbose) {
            Err(e) if e.kind() == ErrorKind::ResourceBusy => {
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
/// The files that set `limits` in the new cgroup `dir`, in the order to write them.
fn limit_files(h: &Hierarchy, dir: &Path, limits: &Limits) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut set = |name: &str, value: String| files.push((dir.join(name), value));
    if let (Some(bytes), true) = (limits.memory, h.controllers.contains(&"memory")) {
        // No swap, so that at its limit the container is OOM-killed instead of slowly swapping.
        if h.v2 {
            set("memory.max", bytes.to_string());
            if dir.join("memory.swap.max").exists() {
                set("memory.swap.max", "0".to_string());
            }
            // At the limit, the OOM killer kills the whole container, its init too, as
            // Kubernetes has it: then the command ends by SIGKILL (137), whichever of its
            // processes ran over. v1 has no such switch: it kills the one it picks.
            if dir.join("memory.oom.group").exists() {
                set("memory.oom.group", "1".to_string());
            }
        } else {
            set("memory.limit_in_bytes", bytes.to_string());
            // memsw is memory + swap, and may not be below the memory limit: so it goes second.
            if dir.join("memory.memsw.limit_in_bytes").exists() {
                set("memory.memsw.limit_in_bytes", bytes.to_string());
            } else {
                set("memory.swappiness", "0".to_string());
            }
        }
    }
    if let (Some(pids), true) = (limits.pids, h.controllers.contains(&"pids")) {
        set("pids.max", pids.to_string());
    }
    if let (Some(cpus), true) = (limits.cpus, h.controllers.contains(&"cpu")) {
        // "At most `quota` µs of CPU time in every period": 0.5 CPUs is 50 ms of each 100 ms.
        let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
        if h.v2 {
            set("cpu.max", format!("{quota} {CPU_PERIOD_US}"));
        } else {
            set("cpu.cfs_period_us", CPU_PERIOD_US.to_string());
            set("cpu.cfs_quota_us", quota.to_string());
        }
    }
    files
}
// ANCHOR_END: limit_files

// ANCHOR: make_cgroup
/// Make the container's cgroup, `byoc-<our PID>`, beneath its parent, and return its path.
fn make_cgroup(h: &Hierarchy, cgroup_parent: Option<&str>, verbose: bool) -> Result<PathBuf> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let made = parent_dir(h, cgroup_parent, verbose).and_then(|parent| {
            remove_stale(&parent, verbose);
            let dir = parent.join(format!("byoc-{}", std::process::id()));
            mkdir(&dir, verbose).map(|()| dir)
        });
        match made {
            // v2's /byoc is shared, and the last container to leave it removes it: if that
            // happened a moment ago, the parent is gone (ENOENT). Then we make it again.
            Err(report) if attempt < 10 && io_error(&report) == Some(ErrorKind::NotFound) => {}
            made => return made,
        }
    }
}
// ANCHOR_END: make_cgroup

/// The container's cgroup: a directory `byoc-<our pid>` in each cgroup tree it uses (one on
/// v2). Dropping it removes it, so a forked child must exec or exit, never drop it.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    /// v2's default parent, /byoc: removed too, when the last container leaves it.
    workbook_parent: Option<PathBuf>,
    /// The directory with the memory controller's files, and the memory limit.
    memory: Option<(PathBuf, u64)>,
    verbose: bool,
}

impl Cgroup {
    /// Make the container's cgroup and write its limits (book: chapter 5).
    pub fn create(limits: &Limits, cgroup_parent: Option<&str>, verbose: bool) -> Result<Cgroup> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .wrap_err("failed to read /proc/self/mountinfo")?;
        let proc_cgroup =
            fs::read_to_string("/proc/self/cgroup").wrap_err("failed to read /proc/self/cgroup")?;
        Self::create_from(&mountinfo, &proc_cgroup, limits, cgroup_parent, verbose)
    }

    /// `create`, given the two /proc files: the unit tests pass those of a fake machine.
    fn create_from(
        mountinfo: &str,
        proc_cgroup: &str,
        limits: &Limits,
        cgroup_parent: Option<&str>,
        verbose: bool,
    ) -> Result<Cgroup> {
        let hierarchies = hierarchies(&mounts(mountinfo), proc_cgroup, limits)?;
        // From here on, an error drops `cgroup`, and Drop removes what was made so far.
        let mut cgroup = Cgroup { dirs: Vec::new(), workbook_parent: None, memory: None, verbose };
        for h in &hierarchies {
            let dir = make_cgroup(h, cgroup_parent, verbose)?;
            cgroup.dirs.push(dir.clone());
            if h.v2 && cgroup_parent.is_none() {
                cgroup.workbook_parent = dir.parent().map(Path::to_path_buf);
            }
            for (file, value) in limit_files(h, &dir, limits) {
                let context = || format!("failed to write {value:?} to {file:?}");
                write(&file, &value, verbose).wrap_err_with(context)?;
            }
            if h.controllers.contains(&"memory") {
                cgroup.memory = limits.memory.map(|limit| (dir, limit));
            }
        }
        Ok(cgroup)
    }

    /// The cgroup's directories, for the container's first process to `join`.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// After the command ended: a line telling how many processes the kernel's OOM killer
    /// killed, or `None` if none. Call it before `remove`: the counters go with the cgroup.
    pub fn oom_report(&self) -> Option<String> {
        let (dir, limit) = self.memory.as_ref()?;
        // v2 counts kills in memory.events, v1 in memory.oom_control, both as "oom_kill N".
        // (The space after oom_kill leaves out v1's "oom_kill_disable 0".)
        let events = read_either(dir, "memory.events", "memory.oom_control")?;
        let count =
            |name: &str| events.lines().find_map(|l| l.strip_prefix(name)?.parse::<u64>().ok());
        let killed = count("oom_kill ")?;
        if killed == 0 {
            return None;
        }
        // v2's memory.oom.group kills the whole container at once, and counts its first
        // victim twice in oom_kill: say what happened rather than a wrong number.
        let victims = match (count("oom_group_kill ").unwrap_or(0), killed) {
            (1.., _) => "the whole container".to_string(),
            (0, 1) => "1 process".to_string(),
            (0, _) => format!("{killed} processes"),
        };
        let limit = mib(*limit);
        let mut report =
            format!("container hit its memory limit ({limit}): the OOM killer killed {victims}");
        // The most memory it ever used. v2 has memory.peak only since Linux 5.19.
        let peak = read_either(dir, "memory.peak", "memory.max_usage_in_bytes");
        if let Some(peak) = peak.and_then(|text| text.trim().parse().ok()) {
            report += &format!("; peak {}", mib(peak));
        }
        Some(report)
    }

    /// Remove the directories. The container must be gone: rmdir refuses a cgroup that holds
    /// a process. Calling it again does nothing.
    pub fn remove(&mut self) -> Result<()> {
        let mut first_error = None;
        for dir in std::mem::take(&mut self.dirs) {
            if let Err(e) = rmdir(&dir, self.verbose) {
                first_error.get_or_insert(e);
            }
        }
        if let Some(parent) = self.workbook_parent.take() {
            // Another container may be in it still (EBUSY): then it stays, for that one.
            narrate(self.verbose, &format!("rmdir({parent:?})"));
            let _ = fs::remove_dir(&parent);
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

// ANCHOR: join
/// Move the calling process into the cgroups `dirs`. The container's first process calls it
/// itself, before it execs the command, so the command never runs unlimited. Call it before
/// pivot_root, while /sys/fs/cgroup is still the host's.
pub fn join(dirs: &[PathBuf], verbose: bool) -> Result<()> {
    for dir in dirs {
        // "0" means "the process that writes this" (kernel: cgroup_procs_write_start),
        // so the child need not look up its own pid.
        let context = || format!("failed to join cgroup {dir:?}");
        write(&dir.join("cgroup.procs"), "0", verbose).wrap_err_with(context)?;
    }
    Ok(())
}
// ANCHOR_END: join

// ANCHOR: remove_stale
/// Remove `byoc-<pid>` cgroups in `parent` whose runtime is gone: one killed by SIGKILL could
/// not clean up. Only empty ones go, as rmdir refuses a cgroup that still has processes. One
/// with our own PID is stale too, whatever kill() says: its runtime had our PID before us.
fn remove_stale(parent: &Path, verbose: bool) {
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
            narrate(verbose, &format!("rmdir({:?})", entry.path()));
            let _ = fs::remove_dir(entry.path());
        }
    }
}
// ANCHOR_END: remove_stale

/// The text of `dir`/`v2_file`, or else of `dir`/`v1_file`.
fn read_either(dir: &Path, v2_file: &str, v1_file: &str) -> Option<String> {
    let text = fs::read_to_string(dir.join(v2_file));
    text.or_else(|_| fs::read_to_string(dir.join(v1_file))).ok()
}

/// The kind of the I/O error at the root of `report`, if it is one.
fn io_error(report: &color_eyre::Report) -> Option<ErrorKind> {
    report.root_cause().downcast_ref::<std::io::Error>().map(std::io::Error::kind)
}

/// mkdir a cgroup: the kernel fills the new directory with its control files.
fn mkdir(dir: &Path, verbose: bool) -> Result<()> {
    narrate(verbose, &format!("mkdir({dir:?})"));
    let context = || format!("failed to create cgroup {dir:?}");
    match fs::create_dir(dir) {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            Err(e).wrap_err_with(context).suggestion("only root may make cgroups: run it with sudo")
        }
        result => result.wrap_err_with(context),
    }
}

/// Write `value` into a control file. fs::write would create a missing file, which cgroupfs
/// never allows (EACCES), but we only write files the kernel made. In the unit tests' fake
/// tree, a plain directory, the file is created, and the test reads back what was written.
fn write(file: &Path, value: &str, verbose: bool) -> std::io::Result<()> {
    narrate(verbose, &format!("write({file:?}, {value:?})"));
    fs::write(file, value)
}

/// rmdir a cgroup, trying again on EBUSY for up to 1 s: just after its last process died the
/// kernel may still call it busy. Already gone counts as removed.
fn rmdir(dir: &Path, verbose: bool) -> Result<()> {
    for _ in 0..100 {
        narrate(verbose, &format!("rmdir({dir:?})"));
        match fs::remove_dir(dir) {
            Err(e) if e.kind() == ErrorKind::ResourceBusy => sleep(Duration::from_millis(10)),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            result => return result.wrap_err_with(|| format!("failed to remove cgroup {dir:?}")),
        }
    }
    bail!("cgroup {dir:?} is still busy after 1 s")
}

/// 104857600 bytes → "100 MiB", 1572864 → "1.5 MiB".
fn mib(bytes: u64) -> String {
    let text = format!("{:.1}", bytes as f64 / (1 << 20) as f64);
    format!("{} MiB", text.strip_suffix(".0").unwrap_or(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A temporary directory that plays /sys/fs/cgroup; removed when dropped. Unlike cgroupfs,
    /// mkdir makes no control files in it: `write` creates them and the tests read them back.
    struct Fake(PathBuf);

    impl Fake {
        fn new() -> Fake {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            let root = std::env::temp_dir().join(format!("byoc-test-{}-{n}", std::process::id()));
            fs::create_dir_all(&root).unwrap();
            Fake(root)
        }

        fn file(&self, path: &str, text: &str) {
            let path = self.0.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }

        fn read(&self, path: impl AsRef<Path>) -> String {
            fs::read_to_string(self.0.join(path)).unwrap()
        }

        /// Like this machine: v1 trees for memory, pids and cpu,cpuacct, and an empty v2 tree.
        fn hybrid(&self) -> String {
            self.file("unified/cgroup.controllers", "hugetlb\n");
            for dir in ["memory/process_api/abc", "memory/my/parent", "pids", "cpu,cpuacct"] {
                fs::create_dir_all(self.0.join(dir)).unwrap();
            }
            let r = self.0.display();
            format!(
                "22 1 0:21 / /proc rw - proc proc rw\n\
                 35 31 0:32 / {r}/memory rw - cgroup cgroup rw,memory\n\
                 39 31 0:36 / {r}/pids rw - cgroup cgroup rw,pids\n\
                 32 31 0:29 / {r}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                 40 31 0:37 / {r}/systemd rw - cgroup cgroup rw,name=systemd\n\
                 41 31 0:38 / {r}/unified rw - cgroup2 cgroup2 rw\n"
            )
        }

        /// Like a laptop: a single v2 tree, and we run in a session scope.
        fn v2(&self, controllers: &str) -> String {
            self.file("cgroup.controllers", controllers);
            self.file("user.slice/session-2.scope/cgroup.procs", "1234\n");
            format!("30 23 0:26 / {} rw - cgroup2 cgroup2 rw\n", self.0.display())
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const HYBRID_CGROUP: &str = "8:pids:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/\n";
    const V2_CGROUP: &str = "0::/user.slice/session-2.scope\n";
    const LIMITS: Limits = Limits { memory: Some(100 << 20), pids: Some(20), cpus: Some(0.5) };

    /// Remove a cgroup made in a fake tree, twice. The kernel deletes the control files with
    /// their cgroup; here the test does.
    fn remove_fake(mut cgroup: Cgroup) {
        let dirs = cgroup.dirs().to_vec();
        for file in dirs.iter().flat_map(|dir| fs::read_dir(dir).unwrap()) {
            fs::remove_file(file.unwrap().path()).unwrap();
        }
        cgroup.remove().unwrap();
        cgroup.remove().unwrap();
        assert!(dirs.iter().all(|dir| !dir.exists()));
    }

    #[test]
    fn detects_the_layout() {
        let (hybrid, v2) = (Fake::new(), Fake::new());
        let v1 = hybrid.hybrid().replace("cgroup2", "ext4");
        assert_eq!(layout(&mounts(&hybrid.hybrid())), "hybrid");
        assert_eq!(layout(&mounts(&v1)), "v1");
        assert_eq!(layout(&mounts(&v2.v2("memory pids"))), "v2");
        assert_eq!(layout(&mounts("22 1 0:21 / /proc rw - proc proc rw")), "none");
    }

    #[test]
    fn hybrid_uses_the_v1_trees_beneath_our_own_cgroups() {
        let fake = Fake::new();
        let cgroup = Cgroup::create_from(&fake.hybrid(), HYBRID_CGROUP, &LIMITS, None, false);
        let cgroup = cgroup.unwrap();
        let name = format!("byoc-{}", std::process::id());
        let memory = Path::new("memory/process_api/abc").join(&name);
        let (pids, cpu) = (Path::new("pids").join(&name), Path::new("cpu,cpuacct").join(&name));
        assert_eq!(cgroup.dirs(), [&memory, &pids, &cpu].map(|dir| fake.0.join(dir)));
        assert_eq!(fake.read(memory.join("memory.limit_in_bytes")), "104857600");
        assert_eq!(fake.read(memory.join("memory.swappiness")), "0"); // the fake has no memsw
        assert_eq!(fake.read(pids.join("pids.max")), "20");
        assert_eq!(fake.read(cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(fake.read(cpu.join("cpu.cfs_quota_us")), "50000");
        join(cgroup.dirs(), false).unwrap();
        assert_eq!(fake.read(pids.join("cgroup.procs")), "0");
        remove_fake(cgroup);
    }

    #[test]
    fn v2_enables_the_controllers_in_the_root_and_byoc() {
        let fake = Fake::new();
        let mountinfo = fake.v2("cpuset cpu io memory hugetlb pids rdma misc\n");
        let cgroup = Cgroup::create_from(&mountinfo, V2_CGROUP, &LIMITS, None, false).unwrap();
        let dir = Path::new("byoc").join(format!("byoc-{}", std::process::id()));
        assert_eq!(cgroup.dirs(), [fake.0.join(&dir)]);
        assert_eq!(fake.read("cgroup.subtree_control"), "+memory +pids +cpu");
        assert_eq!(fake.read("byoc/cgroup.subtree_control"), "+memory +pids +cpu");
        assert_eq!(fake.read(dir.join("memory.max")), "104857600");
        assert_eq!(fake.read(dir.join("pids.max")), "20");
        assert_eq!(fake.read(dir.join("cpu.max")), "50000 100000");
        remove_fake(cgroup);
    }

    /// Two other runtimes start and end containers all the time, each as step 5 does: make
    /// /byoc (or find it made), make its cgroup in it, remove that, remove /byoc (or find
    /// another container in it). Ours race with theirs for /byoc, and every one succeeds.
    #[test]
    fn survives_other_containers_making_and_removing_byoc() {
        use std::sync::atomic::AtomicBool;
        let fake = Fake::new();
        let mountinfo = fake.v2("memory pids\n");
        let byoc = fake.0.join("byoc");
        let done = AtomicBool::new(false);
        // Named after live processes, so that our remove_stale leaves them alone.
        let others = [1, std::os::unix::process::parent_id()].map(|pid| format!("byoc-{pid}"));
        std::thread::scope(|scope| {
            for other in &others {
                let (byoc, done) = (&byoc, &done);
                scope.spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        let _ = fs::create_dir(byoc);
                        if fs::create_dir(byoc.join(other)).is_ok() {
                            sleep(Duration::from_micros(20)); // the container runs
                            fs::remove_dir(byoc.join(other)).unwrap();
                        }
                        // cgroupfs removes a cgroup's files with it; in the fake, we do.
                        let _ = fs::remove_file(byoc.join("cgroup.subtree_control"));
                        let _ = fs::remove_dir(byoc); // fails while a container is inside
                    }
                });
            }
            let memory = Limits { memory: Some(1 << 30), ..Limits::default() };
            for _ in 0..300 {
                let cgroup = Cgroup::create_from(&mountinfo, V2_CGROUP, &memory, None, false);
                let cgroup = cgroup.inspect_err(|_| done.store(true, Ordering::Relaxed)).unwrap();
                remove_fake(cgroup);
            }
            done.store(true, Ordering::Relaxed);
        });
    }

    #[test]
    fn swap_is_turned_off_after_the_memory_limit() {
        let fake = Fake::new();
        fake.file("v1/memory.memsw.limit_in_bytes", "");
        fake.file("v2/memory.swap.max", "");
        let files = |v2: bool, dir: &str| -> Vec<String> {
            let (mount, own) = (fake.0.clone(), String::new());
            let h = Hierarchy { v2, mount, controllers: vec!["memory"], own };
            let files = limit_files(&h, &fake.0.join(dir), &LIMITS).into_iter();
            let short = |file: PathBuf| file.strip_prefix(&fake.0).unwrap().display().to_string();
            files.map(|(file, value)| format!("{}={value}", short(file))).collect()
        };
        let v1 = ["v1/memory.limit_in_bytes=104857600", "v1/memory.memsw.limit_in_bytes=104857600"];
        assert_eq!(files(false, "v1"), v1);
        assert_eq!(files(true, "v2"), ["v2/memory.max=104857600", "v2/memory.swap.max=0"]);
    }

    #[test]
    fn cgroup_parent_must_exist() {
        let fake = Fake::new();
        let memory = Limits { memory: Some(1 << 30), ..Limits::default() };
        let create =
            |parent| Cgroup::create_from(&fake.hybrid(), HYBRID_CGROUP, &memory, parent, false);
        let error = create(Some("/no/such")).unwrap_err();
        assert!(error.to_string().contains("memory/no/such\""), "{error}");
        let cgroup = create(Some("/my/parent")).unwrap();
        assert_eq!(cgroup.dirs()[0].parent(), Some(fake.0.join("memory/my/parent").as_path()));
        remove_fake(cgroup);
    }

    #[test]
    fn a_missing_controller_is_an_error() {
        let fake = Fake::new();
        let error = Cgroup::create_from(&fake.v2("cpu io pids\n"), V2_CGROUP, &LIMITS, None, false);
        let expected = "no cgroup tree offers the memory controller (layout: v2)";
        assert_eq!(error.unwrap_err().to_string(), expected);
    }

    fn oom_report(events_file: &str, events: &str, peak_file: &str) -> Option<String> {
        let fake = Fake::new();
        fake.file(events_file, events);
        fake.file(peak_file, "104857600\n");
        let memory = Some((fake.0.clone(), 100 << 20));
        Cgroup { dirs: Vec::new(), workbook_parent: None, memory, verbose: false }.oom_report()
    }

    #[test]
    fn oom_report_counts_the_kills() {
        let v2 = |events| oom_report("memory.events", events, "memory.peak");
        assert_eq!(v2("oom 0\noom_kill 0\noom_group_kill 0\n"), None);
        assert_eq!(
            v2("oom 1\noom_kill 1\noom_group_kill 0\n").unwrap(),
            "container hit its memory limit (100 MiB): the OOM killer killed 1 process; peak 100 MiB"
        );
        let events = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        let v1 = oom_report("memory.oom_control", events, "memory.max_usage_in_bytes").unwrap();
        assert!(v1.ends_with("killed 2 processes; peak 100 MiB"), "{v1}");
        // memory.oom.group on a 6.1 kernel: 3 processes killed, the first counted twice.
        let group = v2("oom 1\noom_kill 4\noom_group_kill 1\n").unwrap();
        assert!(group.ends_with("killed the whole container; peak 100 MiB"), "{group}");
    }

    #[test]
    fn parses_limits() {
        assert_eq!(parse_size("100m"), Ok(100 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["100q", "-1", "0", "", "m", "1.5g", "99999999999g"] {
            assert!(parse_size(bad).unwrap_err().contains("like 100m"), "{bad}");
        }
        assert_eq!(parse_cpus("0.5"), Ok(0.5));
        assert!(["0", "-1", "nan", "inf", "half"].iter().all(|bad| parse_cpus(bad).is_err()));
        assert_eq!(parse_pids("20"), Ok(20));
        assert!(["0", "-1", "2.5"].iter().all(|bad| parse_pids(bad).is_err()));
    }

    #[test]
    fn removes_only_dead_empty_byoc_cgroups() {
        let fake = Fake::new();
        // 999999999 is above the largest pid Linux allows (2^22): surely not running.
        let alive = format!("byoc-{}", std::os::unix::process::parent_id());
        let ours = format!("byoc-{}", std::process::id());
        let dirs =
            [&alive, &ours, "byoc-999999999", "byoc-999999998", "byoc-abc", "other-999999999"];
        for dir in dirs {
            fs::create_dir(fake.0.join(dir)).unwrap();
        }
        fake.file("byoc-999999998/cgroup.procs", "42\n"); // not empty
        remove_stale(&fake.0, false);
        assert!(!fake.0.join("byoc-999999999").exists());
        assert!(!fake.0.join(&ours).exists(), "a stale cgroup with our own PID stays");
        for kept in [&alive, "byoc-999999998", "byoc-abc", "other-999999999"] {
            assert!(fake.0.join(kept).exists(), "{kept}");
        }
    }
}
