//! The learner without root: user `nobody`, their own checkout of the project, and the
//! commands that run a step as them (book: chapter 2, Without root).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::os::unix::process::CommandExt;

use super::host::HostState;
use super::project::{PROJECT, require_rootfs, scratch_dir};
use super::run::{Step, as_a_learner};
use super::transcript::{Run, transcript_of};

/// User `nobody`, the learner without root of the rootless tests.
pub const NOBODY: u32 = 65534;

/// setpriv(1)'s arguments that run a program as `nobody`, with no group of root's.
pub const AS_NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// A learner's checkout for rootless runs, removed when dropped: the step at
/// `target/debug/`, and a copy of rootfs/ that belongs to `nobody`, as `just
/// rootfs` makes it for a learner without root. Make it while holding a
/// `HostState` (see ONE_AT_A_TIME: ETXTBSY).
pub struct RootlessCheckout {
    pub dir: PathBuf,
    pub exe: PathBuf,
}

impl RootlessCheckout {
    pub fn new(step: &Step) -> RootlessCheckout {
        Self::of(Path::new(step.exe), step.number >= 3)
    }

    /// The same for any build of a step (a learner's, in the workshop's checks), with a
    /// rootfs or not.
    pub fn of(program: &Path, with_rootfs: bool) -> RootlessCheckout {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = program.file_name().unwrap();
        let dir = scratch_dir(&format!("rootless-{}-{n}", name.to_string_lossy()));
        fs::create_dir_all(dir.join("target/debug")).unwrap();
        // The learner's own checkout: what they build in is theirs.
        for theirs in [dir.clone(), dir.join("target"), dir.join("target/debug")] {
            std::os::unix::fs::lchown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let exe = dir.join("target/debug").join(name);
        fs::copy(program, &exe).unwrap();
        if with_rootfs {
            require_rootfs();
            copy_for_nobody(&Path::new(PROJECT).join("rootfs"), &dir.join("rootfs"));
        }
        RootlessCheckout { dir, exe }
    }

    /// `./target/debug/stepN`, run as `nobody` from the checkout, with a
    /// learner's environment: no root's PATH.
    pub fn command(&self) -> Command {
        let mut setpriv = as_a_learner(Command::new("setpriv"));
        setpriv.args(AS_NOBODY).arg(&self.exe);
        setpriv.current_dir(&self.dir).env("PATH", "/usr/bin:/bin").env("HOME", "/");
        setpriv
    }

    /// The rootfs that `--rootfs DIR` names in `args`, if it is one of the project's (such as
    /// tests/attacks.rs's): copied for `nobody` too, to the same place in the checkout.
    pub fn copy_rootfs_named_in(&self, args: &[&str]) {
        let Some(at) = args.iter().position(|arg| *arg == "--rootfs") else { return };
        let named = Path::new(args[at + 1]);
        let project = Path::new(PROJECT).join(named);
        if named.is_relative() && project.is_dir() && !self.dir.join(named).exists() {
            fs::create_dir_all(self.dir.join(named).parent().unwrap()).unwrap();
            copy_for_nobody(&project, &self.dir.join(named));
        }
    }

    /// `./target/debug/stepN`, run as root from the checkout.
    pub fn command_as_root(&self) -> Command {
        let mut command = as_a_learner(Command::new(&self.exe));
        command.current_dir(&self.dir);
        command
    }

    /// `command`, with `nobody` given the IDs 200000 to 265535 in /etc/subuid and
    /// /etc/subgid, as `sudo usermod --add-subuids 200000-265535 --add-subgids …` would: the
    /// two files are bound over the host's in a mount namespace of the run's own, so that the
    /// host's stay as they are. newuidmap and newgidmap, from the `uidmap` package that `just
    /// test` installs, read them.
    pub fn command_with_ids(&self) -> Command {
        for file in ["/usr/bin/newuidmap", "/usr/bin/newgidmap", "/etc/subuid", "/etc/subgid"] {
            assert!(Path::new(file).exists(), "no {file}: install the uidmap package");
        }
        let ranges = self.dir.join("subordinate-ids");
        fs::write(&ranges, "nobody:200000:65536\n").unwrap();
        let mut command = as_nobody_after(BIND_SUBORDINATE_IDS);
        command.arg(&ranges).arg(&self.exe);
        command.current_dir(&self.dir).env("PATH", "/usr/bin:/bin").env("HOME", "/");
        command
    }
}

/// `run_line`, by the learner without root: as `nobody`, from a checkout of their own,
/// where `just stepN` is `./target/debug/stepN` and the rootfs the line names with
/// `--rootfs` is theirs too. Checks that it left the host as it found it.
pub fn run_line_rootless(step: &Step, line: &str) -> Run {
    let host = HostState::now();
    let checkout = RootlessCheckout::new(step);
    checkout.copy_rootfs_named_in(&line.split_whitespace().collect::<Vec<_>>());
    let real =
        line.replace(&format!("just {} ", step.name), &format!("{} ", checkout.exe.display()));
    let mut command = as_a_learner(Command::new("setpriv"));
    command.args(AS_NOBODY).args(["sh", "-c", &real]).process_group(0);
    command.current_dir(&checkout.dir).env("PATH", "/usr/bin:/bin").env("HOME", "/");
    let run = transcript_of(command, line);
    host.assert_unchanged(step.name);
    run
}

impl Drop for RootlessCheckout {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A command that runs `script` as root, in a mount namespace of its own (what it mounts
/// there no one else sees, and it goes with the run), then the rest of its arguments as
/// `nobody`. The script's own arguments come first, `$1`…, and it shifts them away.
pub fn as_nobody_after(script: &str) -> Command {
    let script = format!("set -e\n{script}\nexec setpriv {} \"$@\"", AS_NOBODY.join(" "));
    let mut unshare = as_a_learner(Command::new("unshare"));
    unshare.args(["--mount", "--propagation", "private", "sh", "-c", &script, "sh"]);
    unshare
}

/// `as_nobody_after` script: bind the file `$1` over /etc/subuid and /etc/subgid.
const BIND_SUBORDINATE_IDS: &str =
    "mount --bind \"$1\" /etc/subuid\nmount --bind \"$1\" /etc/subgid\nshift";

/// cp -a `from` `to`, everything then owned by `nobody`. A device file or a FIFO (the
/// attacks' rootfs plant some) is made anew, not read: /dev/zero would never end.
fn copy_for_nobody(from: &Path, to: &Path) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, lchown};
    let meta = fs::symlink_metadata(from).unwrap();
    let kind = meta.file_type();
    if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
        let kind = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & nix::libc::S_IFMT);
        let mode = nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777);
        nix::sys::stat::mknod(to, kind, mode, meta.rdev()).unwrap();
    } else if meta.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from).unwrap(), to).unwrap();
    } else if meta.is_dir() {
        fs::create_dir(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_for_nobody(&entry.path(), &to.join(entry.file_name()));
        }
        fs::set_permissions(to, fs::Permissions::from_mode(meta.permissions().mode())).unwrap();
    } else {
        fs::copy(from, to).unwrap();
    }
    lchown(to, Some(NOBODY), Some(NOBODY)).unwrap();
}
