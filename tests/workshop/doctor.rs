//! `just doctor`: is this machine ready for the workbook? One line per thing the workbook needs:
//! ✔, or ✘ with what to do. With `--fix`, it also clears what an interrupted run can leave
//! behind: mounts in this checkout, the workbook's cgroups, and files in target/ that a run as
//! root left root's.
//!
//! What the steps decide, it asks the steps: the kernel switches that refuse users user
//! namespaces and a user's own range of IDs (`rootless.rs`), the cgroup layout and its
//! controllers (`cgroup/trees.rs`), step 5's own files, which main.rs includes. Before it is
//! built, tests/workshop/doctor.sh checks what building it needs: Linux, Rust, a target/ of yours.

use std::env;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use nix::sys::signal::kill;
use nix::unistd::{Gid, Pid, Uid};

use crate::limits::Limits;
use crate::{rootless, trees};

/// The controllers step 5's limits use: memory, pids, cpu.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// The lines said so far, and how many problems they named.
struct Doctor {
    problems: usize,
}

impl Doctor {
    fn ok(&self, what: &str) {
        println!("✔ {what}");
    }

    fn no(&mut self, what: &str, fix: &str) {
        println!("✘ {what}");
        println!("    fix: {fix}");
        self.problems += 1;
    }
}

/// Run the doctor, from the checkout's root; with `fix`, clear the leftovers it finds.
pub fn run(fix: bool) -> ExitCode {
    let mut doctor = Doctor { problems: 0 };
    let here = env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let root = Uid::current().is_root();
    let sudo = on_path("sudo");

    let os = fs::read_to_string("/proc/sys/kernel/ostype").unwrap_or_default();
    if os.trim() == "Linux" {
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        doctor.ok(&format!("Linux {}", release.trim()));
    } else {
        doctor.no(
            "this is not Linux: namespaces and cgroups are Linux's",
            "use a Linux virtual machine (book: Setup)",
        );
    }
    if root {
        doctor.ok("root");
    } else if sudo {
        doctor.ok("sudo, for runs as root (ROOTLESS=1 runs without)");
    } else {
        doctor.ok("no sudo: the steps run rootless (book: chapter 2, Without root)");
    }

    // Rootless runs need the kernel to let users make user namespaces: the steps' own switches.
    let refused = rootless::USERNS_SWITCHES.into_iter().find(|(file, refuses, _, _)| {
        fs::read_to_string(file).is_ok_and(|value| value.trim() == *refuses)
    });
    match refused {
        None => doctor.ok("user namespaces, for rootless runs"),
        Some((_, _, allows, _)) => {
            let name = allows.split('=').next().unwrap_or(allows);
            if root || sudo {
                doctor.ok(&format!("no user namespaces for users ({name}): runs as root only"));
            } else {
                doctor.no(
                    &format!("no sudo, and the kernel refuses users user namespaces ({name})"),
                    &format!("as root, once: sysctl {allows} (book: Troubleshooting)"),
                );
            }
        }
    }
    // Rootless, a second user in the container (--user) needs a range of IDs of your own, and
    // the helpers that map it: the steps' own test of both.
    if !root && refused.is_none() {
        if rootless::subordinate_ids().is_some() {
            doctor.ok(
                "newuidmap, and IDs of your own in /etc/subuid and /etc/subgid: rootless --user works",
            );
        } else {
            println!(
                "  (rootless, --user needs the uidmap package and a range of IDs of your own: \
                 book: Troubleshooting)"
            );
        }
    }
    for ns in ["uts", "pid", "mnt", "ipc", "net"] {
        if !Path::new("/proc/self/ns").join(ns).exists() {
            doctor.no(
                &format!("the kernel has no {ns} namespaces"),
                "use a kernel built with namespaces (any distribution's)",
            );
        }
    }
    doctor.ok("namespaces: uts pid mnt ipc net");

    // The cgroup layout, and the controllers step 5 finds there, as step 5 finds them.
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let proc_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let layout = trees::layout(&trees::mounts(&mountinfo));
    let missing: Vec<&str> = CONTROLLERS
        .into_iter()
        .filter(|controller| {
            let limits = Limits {
                memory: (*controller == "memory").then_some(1),
                pids: (*controller == "pids").then_some(1),
                cpus: (*controller == "cpu").then_some(1.0),
            };
            trees::find(&mountinfo, &proc_cgroup, &limits).is_err()
        })
        .collect();
    if missing.is_empty() {
        doctor.ok(&format!("cgroups: {layout}, with memory, pids and cpu"));
    } else {
        doctor.no(
            &format!("cgroups ({layout}) lack: {}", missing.join(" ")),
            "step 5 needs them: boot with them enabled, or leave out its limits",
        );
    }
    let rootless_mode = !root && (env::var("ROOTLESS").is_ok_and(|value| value == "1") || !sudo);
    if rootless_mode && layout != "v2" {
        println!(
            "  (rootless, step 5's limits need cgroup v2, delegated to you: here they need root)"
        );
    }

    if on_path("rustc") {
        let version = second_word(output_of("rustc", &["--version"]));
        if at_least(&version, [1, 89, 0]) {
            doctor.ok(&format!("Rust {version}"));
        } else {
            doctor.no(&format!("Rust {version} is older than 1.89"), "rustup update");
        }
    } else {
        doctor.no("no Rust", "install it from https://rustup.rs");
    }
    if let Ok(built) = fs::read_to_string("rootfs/.built") {
        doctor.ok(&format!("rootfs/ built: {}", built.lines().collect::<Vec<_>>().join(" ")));
    } else if on_path("apt-get") {
        doctor.no("rootfs/ not built yet", "just rootfs");
    } else {
        doctor.no("rootfs/ not built, and no apt-get to build it", "see rootfs/README.md");
    }
    if on_path("mdbook") {
        doctor.ok(&format!("mdBook {}", second_word(output_of("mdbook", &["--version"]))));
    } else {
        doctor
            .no("no mdBook, for the book", "just prepare (or cargo install --locked mdbook@0.5.4)");
    }

    // What an interrupted run can leave: a mount in this checkout (rootfs/ bound on itself,
    // its old root), the workbook's cgroups, root's files in target/.
    let inside = format!("{}/", here.display());
    let mut mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| point.starts_with(&inside))
        .collect();
    mounts.sort_unstable_by(|a, b| b.cmp(a));
    if mounts.is_empty() {
        doctor.ok("no mount left in this checkout");
    } else if fix {
        for mount in mounts {
            if as_root(root, "umount", &["-l", mount], false) {
                println!("  unmounted {mount}");
            }
        }
    } else {
        doctor.no(
            &format!("mounts left in this checkout: {}", mounts.join(" ")),
            "just doctor --fix",
        );
    }
    let cgroups = leftover_cgroups();
    if cgroups.is_empty() {
        doctor.ok("no cgroup of the workbook's left");
    } else if fix {
        for cgroup in cgroups {
            let cgroup = cgroup.display().to_string();
            if as_root(root, "rmdir", &[&cgroup], true) {
                println!("  removed {cgroup}");
            }
        }
    } else {
        let cgroups: Vec<String> = cgroups.iter().map(|c| c.display().to_string()).collect();
        doctor.no(&format!("cgroups left: {}", cgroups.join(" ")), "just doctor --fix");
    }
    let target = Path::new("target");
    if !root && target.is_dir() && owned_by_root(target) {
        if fix {
            let owner = format!("{}:{}", Uid::current(), Gid::current());
            if as_root(root, "chown", &["-R", &owner, "target"], false) {
                println!("  target/ is yours again");
            }
        } else {
            doctor.no("files in target/ belong to root, and stop your builds", "just doctor --fix");
        }
    } else {
        doctor.ok("target/ is yours");
    }
    if doctor.problems == 0 {
        println!("Ready.");
        ExitCode::SUCCESS
    } else {
        println!("{} to fix.", doctor.problems);
        ExitCode::FAILURE
    }
}

/// Whether `program` is an executable file in a directory of the PATH, as `command -v` finds it.
fn on_path(program: &str) -> bool {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path).any(|dir| {
        fs::metadata(dir.join(program)).is_ok_and(|meta| meta.is_file() && meta.mode() & 0o111 != 0)
    })
}

/// What `program ARGS…` prints, its first line, if it runs.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).stderr(Stdio::null()).output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or_default().to_string())
}

/// The second word of a tool's `--version` line ("rustc 1.92.0 (…)", "mdbook v0.5.4").
fn second_word(line: Option<String>) -> String {
    line.unwrap_or_default().split(' ').nth(1).unwrap_or_default().to_string()
}

/// Whether `version` ("1.92.0", "1.95.0-nightly") is `least` or later, as `sort -V` orders them.
fn at_least(version: &str, least: [u64; 3]) -> bool {
    let numbers = version.split(['.', '-']).map(|part| part.parse::<u64>().unwrap_or(0));
    let mut ours = [0; 3];
    for (slot, number) in ours.iter_mut().zip(numbers) {
        *slot = number;
    }
    ours >= least
}

/// Run `program ARGS…` as root: itself when we are root, through sudo otherwise. Its errors go
/// to stderr, but for `quiet`'s. Whether it succeeded.
fn as_root(root: bool, program: &str, args: &[&str], quiet: bool) -> bool {
    let mut command = if root { Command::new(program) } else { Command::new("sudo") };
    if !root {
        command.arg(program);
    }
    command.args(args);
    if quiet {
        command.stderr(Stdio::null());
    }
    match command.status() {
        Ok(status) => status.success(),
        Err(error) => {
            eprintln!("{}: {error}", if root { program } else { "sudo" });
            false
        }
    }
}

/// The workbook's cgroups that no run holds any more, deepest first: a `byoc-PID` whose
/// process is gone (or not ours to signal), and a `byoc`, `byoc-net` (or any other `byoc-`
/// name) with no cgroup beneath it.
fn leftover_cgroups() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "byoc" || name.starts_with("byoc-") {
                found.push(path.clone());
            }
            todo.push(path);
        }
    }
    let mut left: Vec<PathBuf> = found
        .into_iter()
        .filter(|dir| {
            // byoc-PID: the run of process PID; any other name: a parent of such cgroups.
            let text = dir.display().to_string();
            let pid = text.rsplit_once("/byoc-").map_or(text.as_str(), |(_, pid)| pid);
            if !pid.is_empty() && pid.bytes().all(|byte| byte.is_ascii_digit()) {
                pid.parse().map_or(true, |pid| kill(Pid::from_raw(pid), None).is_err())
            } else {
                !has_subdirectory(dir)
            }
        })
        .collect();
    left.sort_unstable_by(|a, b| b.cmp(a));
    left
}

/// Whether `dir` holds a directory (or a link to one) whose name does not start with a dot.
fn has_subdirectory(dir: &Path) -> bool {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| !entry.file_name().to_string_lossy().starts_with('.') && entry.path().is_dir())
}

/// Whether `path`, or anything beneath it, belongs to root (links not followed).
fn owned_by_root(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else { return false };
    if meta.uid() == 0 {
        return true;
    }
    meta.is_dir()
        && fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| owned_by_root(&entry.path()))
}
