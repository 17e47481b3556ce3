//! Where the cgroup trees are (book: chapter 5, "v1, v2 and hybrid"). `cgroup.rs` reads as if
//! every machine had one v2 tree at /sys/fs/cgroup, as most laptops do; this file knows the
//! others. v1 mounts one tree per controller (/sys/fs/cgroup/memory, ...), with file names of
//! its own; "hybrid" machines mount both, and each controller works in exactly one of the trees,
//! so we look it up per controller, in /proc/self/mountinfo and /proc/self/cgroup.

use std::fs;
use std::path::{Path, PathBuf};

use color_eyre::Section;
use color_eyre::eyre::{Result, bail, eyre};

use crate::limits::Limits;

/// One mounted cgroup tree.
#[derive(Debug)]
pub(super) struct Mount {
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

/// The cgroup trees in /proc/self/mountinfo, whose lines look like
/// `35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory`:
/// the 5th field is the mount point; after the "-" come the type, the source and the options.
pub(super) fn mounts(mountinfo: &str) -> Vec<Mount> {
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

/// "v1", "v2", "hybrid" (both: systemd's way before v2 became the default) or "none".
pub(super) fn layout(mounts: &[Mount]) -> &'static str {
    match (mounts.iter().any(|m| !m.v2), mounts.iter().any(|m| m.v2)) {
        (true, true) => "hybrid",
        (true, false) => "v1",
        (false, true) => "v2",
        (false, false) => "none",
    }
}

/// A cgroup tree we use: the controllers we need from it, and the cgroup we run in there.
#[derive(Debug)]
pub struct Tree {
    pub v2: bool,
    pub mount: PathBuf,
    pub controllers: Vec<&'static str>,
    pub own: String,
}

impl Tree {
    /// Whether we use `controller` from this tree.
    pub fn holds(&self, controller: &str) -> bool {
        self.controllers.contains(&controller)
    }
}

/// For each controller the limits need, the tree that holds it, from the two /proc files that
/// say so. On a hybrid machine the v2 tree is mounted too, but it holds only what its
/// cgroup.controllers lists.
pub fn find(mountinfo: &str, proc_cgroup: &str, limits: &Limits) -> Result<Vec<Tree>> {
    let mounts = mounts(mountinfo);
    let wanted = [
        ("memory", limits.memory.is_some()),
        ("pids", limits.pids.is_some()),
        ("cpu", limits.cpus.is_some()),
    ];
    let mut trees: Vec<Tree> = Vec::new();
    for (controller, _) in wanted.into_iter().filter(|&(_, wanted)| wanted) {
        let Some(mount) = mounts.iter().find(|m| m.holds(controller)) else {
            return Err(eyre!(
                "no cgroup tree offers the {controller} controller (layout: {})",
                layout(&mounts)
            ))
            .suggestion(
                "leave out that limit; `grep cgroup /proc/self/mountinfo` shows the trees",
            );
        };
        match trees.iter_mut().find(|tree| tree.mount == mount.path) {
            Some(tree) => tree.controllers.push(controller),
            None => trees.push(Tree {
                v2: mount.v2,
                mount: mount.path.clone(),
                controllers: vec![controller],
                own: own_cgroup(proc_cgroup, mount)?,
            }),
        }
    }
    Ok(trees)
}

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

/// v1's parent for the container's cgroup: the one we run in. A v1 cgroup may hold processes
/// and child cgroups at once (v2's "no internal processes" rule is v2's alone).
pub fn v1_parent(tree: &Tree) -> PathBuf {
    tree.mount.join(tree.own.trim_start_matches('/'))
}

/// v1's files for a memory limit, in the order to write them, and without swap: memsw is
/// memory + swap and may not be below the memory limit, so it goes second. Without swap
/// accounting there is no memsw file; swappiness 0 then asks the kernel not to swap. v1 has no
/// memory.oom.group: at the limit it kills the one process it picks.
pub fn v1_memory_limit(dir: &Path, bytes: u64) -> Vec<(PathBuf, String)> {
    let mut files = vec![(dir.join("memory.limit_in_bytes"), bytes.to_string())];
    if dir.join("memory.memsw.limit_in_bytes").exists() {
        files.push((dir.join("memory.memsw.limit_in_bytes"), bytes.to_string()));
    } else {
        files.push((dir.join("memory.swappiness"), "0".to_string()));
    }
    files
}

/// v1's files for a CPU quota: cpu.max's two numbers, in two files.
pub fn v1_cpu_limit(dir: &Path, quota: u64, period: u64) -> Vec<(PathBuf, String)> {
    vec![
        (dir.join("cpu.cfs_period_us"), period.to_string()),
        (dir.join("cpu.cfs_quota_us"), quota.to_string()),
    ]
}
