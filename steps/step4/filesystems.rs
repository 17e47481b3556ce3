// ANCHOR: head
//! The filesystems the container sees (book: chapter 4, part 2).
//!
//! Step 3 made `rootfs/` the container's `/`, and left the host's old root
//! mounted at /oldrootfs, with the host's /proc, /sys and /dev below it. Now the
//! old root goes, and the container gets filesystems of its own: its
//! processes in /proc, a read-only /sys, a /dev with only harmless devices,
//! and a private /tmp.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use color_eyre::Section;
use color_eyre::eyre::{Result, WrapErr};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{chdir, fchdir, pivot_root};

use crate::narrate::{self, Show, narrate};
// ANCHOR_END: head

// ANCHOR: enter_rootfs
/// Go into what becomes our `/`: a throwaway layer over rootfs/, so that the
/// container changes nothing in it (or, with --writable, rootfs/ itself,
/// bind-mounted on itself as in step 3: pivot_root(2) wants a mount point).
/// The host's root stays ours until drop_old_root, so that mount_filesystems
/// mounts while the host's /proc and /sys are still in our mount namespace: in
/// a user namespace, the kernel lets us mount a new proc or sysfs only when the
/// namespace already holds one fully visible (book: chapter 4, "Why mount
/// before the pivot").
pub fn enter_rootfs(rootfs: &Path, writable: bool, size: u64) -> Result<()> {
    if !writable {
        return enter_a_layer_over(rootfs, size);
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    narrate!(mount(Some(rootfs), rootfs, None::<&str>, flags, None::<&str>))
        .wrap_err_with(|| format!("cannot bind-mount {rootfs:?} on itself"))?;
    remount(rootfs, MsFlags::MS_NODEV)?;
    narrate!(chdir(rootfs)).wrap_err_with(|| format!("cannot chdir to {rootfs:?}"))
}
// ANCHOR_END: enter_rootfs

// ANCHOR: drop_old_root
/// Make the directory we are in our `/`, and leave nothing of the host's tree
/// behind. We pivot as runc does, with the new root as put_old too:
/// `pivot_root(".", ".")` stacks the old root on top of the new one, and a
/// lazy unmount of "." takes it away, with all that is mounted below it. No
/// `oldrootfs/` is needed, so two containers never share one.
pub fn drop_old_root(rootfs: &Path) -> Result<()> {
    narrate!(pivot_root(".", "."))
        .wrap_err_with(|| format!("pivot_root(\".\", \".\") in {rootfs:?} refused"))
        .suggestion(
            "pivot_root needs a rootfs on a private mount: see the book's Troubleshooting appendix",
        )?;
    narrate!(umount2(".", MntFlags::MNT_DETACH)).wrap_err("cannot unmount the old root")?;
    narrate!(chdir("/")).wrap_err("cannot chdir to the new root")
}
// ANCHOR_END: drop_old_root

// ANCHOR: enter_a_layer_over
/// Mount a copy-on-write layer over `rootfs`, as `docker run --rm` gives a
/// container over its image, and chdir into it. overlayfs shows the rootfs
/// (its lower layer, never written) through an upper layer in memory, where
/// every change goes, and is thrown away with the container: each run starts
/// from the same rootfs/, and no file the container makes, a set-user-ID
/// program say, is left on the host. The tmpfs for the upper layer goes over
/// the rootfs's own path, in this mount namespace only; the rootfs stays
/// reachable through a descriptor opened first. The tmpfs holds `size` bytes at
/// most (`--tmpfs-size`), in memory that belongs to no process: step 5's memory
/// limit counts it, nothing else would. Where overlayfs refuses (it stacks two
/// deep at most: a checkout in a container's overlay is one), the rootfs is
/// mounted read-only instead, with the same effect but for writes. Each way,
/// the rootfs is mounted nodev: a device file in it opens nothing.
fn enter_a_layer_over(rootfs: &Path, size: u64) -> Result<()> {
    let path = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let lower = narrate!(open(rootfs, path, Mode::empty()))
        .wrap_err_with(|| format!("cannot open {rootfs:?}"))?;
    let here = open(".", path, Mode::empty()).wrap_err("cannot open the current directory")?;
    let options = format!("mode=755,{}", tmpfs_size(size));
    mount_fs("tmpfs", &rootfs.to_string_lossy(), MsFlags::MS_NODEV, &options)?;
    narrate!(chdir(rootfs)).wrap_err("cannot chdir to the layer's tmpfs")?;
    for dir in ["upper", "work", "root"] {
        fs::create_dir(dir).wrap_err_with(|| format!("cannot make {dir} in the layer's tmpfs"))?;
    }
    let options =
        format!("lowerdir=/proc/self/fd/{},upperdir=upper,workdir=work", lower.as_raw_fd());
    let (overlay, layer, nodev) = (Some("overlay"), "root", MsFlags::MS_NODEV);
    match narrate!(mount(overlay, layer, overlay, nodev, Some(options.as_str()))) {
        Ok(()) => {}
        Err(error @ (Errno::EINVAL | Errno::ENODEV | Errno::EPERM)) => {
            eprintln!(
                "note: overlayfs refused a layer over {rootfs:?} ({error}): the container's / \
                 is read-only instead (book: chapter 4, A throwaway layer)"
            );
            fchdir(&here).wrap_err("cannot chdir back")?;
            umount2(rootfs, MntFlags::MNT_DETACH).wrap_err("cannot unmount the layer's tmpfs")?;
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
            narrate!(mount(Some(rootfs), rootfs, None::<&str>, flags, None::<&str>))
                .wrap_err_with(|| format!("cannot bind-mount {rootfs:?} on itself"))?;
            remount(rootfs, MsFlags::MS_RDONLY | MsFlags::MS_NODEV)?;
            return narrate!(chdir(rootfs)).wrap_err_with(|| format!("cannot chdir to {rootfs:?}"));
        }
        Err(error) => {
            return Err(error).wrap_err_with(|| format!("cannot mount a layer over {rootfs:?}"));
        }
    }
    narrate!(chdir(layer)).wrap_err("cannot chdir to the layer")
}
// ANCHOR_END: enter_a_layer_over

// ANCHOR: mount_filesystems
/// The filesystems every Linux program expects, made fresh for the container
/// instead of shared with the host: its own processes in /proc, a read-only
/// /sys, a /dev with only harmless devices, and a private /tmp. Each is
/// nosuid, nodev and noexec where it can be (book: chapter 4, "mounts"). Last,
/// the parts of /proc and /sys that are the host's are protected. All of it
/// in the new root, which is the directory we are in: the paths are relative.
pub fn mount_filesystems(size: u64) -> Result<()> {
    let (nosuid, nodev, noexec) = (MsFlags::MS_NOSUID, MsFlags::MS_NODEV, MsFlags::MS_NOEXEC);
    mount_fs("proc", "proc", nosuid | nodev | noexec, "")?;
    mount_fs("sysfs", "sys", MsFlags::MS_RDONLY | nosuid | nodev | noexec, "")?;
    mount_fs("tmpfs", "dev", nosuid | noexec, "mode=755,size=65536k")?;
    make_devices()?;
    mount_fs("devpts", "dev/pts", nosuid | noexec, "ptmxmode=0666,mode=620")?;
    mount_fs("tmpfs", "dev/shm", nosuid | nodev | noexec, "mode=1777,size=65536k")?;
    mount_fs("tmpfs", "tmp", nosuid | nodev, &format!("mode=1777,{}", tmpfs_size(size)))?;
    protect_host_paths()
}
// ANCHOR_END: mount_filesystems

// ANCHOR: mount_fs
/// mount(2) a fresh filesystem of type `fstype` on `target`, made if missing.
fn mount_fs(fstype: &str, target: &str, flags: MsFlags, options: &str) -> Result<()> {
    fs::create_dir_all(target)
        .wrap_err_with(|| format!("cannot create the mount point {target}"))?;
    narrate!(mount(Some(fstype), target, Some(fstype), flags, Some(options)))
        .wrap_err_with(|| format!("cannot mount {fstype} on {target}"))
}

/// tmpfs's options for at most `bytes` bytes, and a file per 4 KiB of them:
/// each file costs kernel memory that `size` does not count.
fn tmpfs_size(bytes: u64) -> String {
    format!("size={bytes},nr_inodes={}", (bytes / 4096).max(64))
}

/// clap's parser for a size, such as `--tmpfs-size 64m`: bytes, or a number
/// with k, m or g (1024-based).
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
// ANCHOR_END: mount_fs

// ANCHOR: READ_ONLY
/// The parts of the container's /proc that are the whole host's, not the
/// container's: they stay readable, and writing them is refused, as Docker
/// does. (path, what writing it would do to the host)
const READ_ONLY: [(&str, &str); 5] = [
    ("/proc/bus", "reprogram the host's PCI devices"),
    ("/proc/fs", "change the host's filesystem settings (nfsd, …)"),
    ("/proc/irq", "move the host's interrupts between its CPUs"),
    ("/proc/sys", "set the host's kernel settings: kernel.core_pattern runs a program as root"),
    ("/proc/sysrq-trigger", "press the host's magic SysRq key: reboot it, crash it"),
];
// ANCHOR_END: READ_ONLY

// ANCHOR: MASKED
/// What the container may not even read: the host's, and no program's
/// business. Each is hidden, as Docker hides them, behind an empty read-only
/// tmpfs for a directory, or /dev/null for a file. (path, what it shows or does)
const MASKED: [(&str, &str); 12] = [
    ("/proc/acpi", "the host's power management, some of it writable"),
    ("/proc/asound", "the host's sound cards"),
    ("/proc/interrupts", "the host's interrupts, CPU by CPU: when its devices are busy"),
    ("/proc/kcore", "the host's memory, as a core file"),
    ("/proc/keys", "the kernel's keyrings, every user's on the host"),
    ("/proc/latency_stats", "what the host's processes wait for"),
    ("/proc/timer_list", "the host's timers, and the processes behind them"),
    ("/proc/timer_stats", "the host's timers, on old kernels"),
    ("/proc/sched_debug", "every process on the host, as the scheduler sees it"),
    ("/proc/scsi", "the host's disks: a write to /proc/scsi/scsi detaches one"),
    ("/sys/firmware", "the host's firmware: ACPI tables, EFI variables"),
    ("/sys/devices/virtual/powercap", "the host's power use, which betrays what it computes"),
];
// ANCHOR_END: MASKED

// ANCHOR: protect_host_paths
/// Make READ_ONLY read-only and hide MASKED. Kernels differ in which of them
/// they have (sysrq-trigger and kcore are build options): one that is missing
/// has nothing to protect. The narration says why each is protected.
fn protect_host_paths() -> Result<()> {
    for (path, why) in READ_ONLY {
        let path = in_new_root(path);
        if path.exists() {
            make_read_only(path, &format!("read-only, else it could {why}"))?;
        }
    }
    for (path, what) in MASKED {
        let path = in_new_root(path);
        let why = format!("hidden: {what}");
        if path.is_dir() {
            let flags =
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            narrate!(mount(Some("tmpfs"), path, Some("tmpfs"), flags, Some("mode=755")), because why)
                .wrap_err_with(|| format!("cannot hide {path:?}"))?;
        } else if path.exists() {
            let flags = MsFlags::MS_BIND;
            narrate!(mount(Some("dev/null"), path, None::<&str>, flags, None::<&str>), because why)
                .wrap_err_with(|| format!("cannot hide {path:?}"))?;
            remount_read_only(path)?;
        }
    }
    // And one directory per CPU, as Docker hides them: how often each ran too hot.
    for path in thermal_throttle_dirs() {
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let why = "hidden: how hot the host's CPU runs, which betrays what it computes";
        narrate!(mount(Some("tmpfs"), path.as_path(), Some("tmpfs"), flags, Some("mode=755")), because why)
            .wrap_err_with(|| format!("cannot hide {path:?}"))?;
    }
    Ok(())
}

/// sys/devices/system/cpu/cpuN/thermal_throttle, each this kernel has (Intel
/// CPUs' thermal events), in the new root.
fn thermal_throttle_dirs() -> Vec<PathBuf> {
    let cpus = Path::new("sys/devices/system/cpu");
    let Ok(entries) = fs::read_dir(cpus) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let number = name.to_str().and_then(|name| name.strip_prefix("cpu"));
            number.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|entry| entry.path().join("thermal_throttle"))
        .filter(|dir| dir.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// "/proc/kcore" in the new root, which is the directory we are in.
fn in_new_root(path: &str) -> &Path {
    Path::new(path.trim_start_matches('/'))
}
// ANCHOR_END: protect_host_paths

// ANCHOR: make_read_only
/// Make `path` read-only: bind-mount it on itself, then remount that bind
/// mount read-only (a bind mount takes its flags only then). A remount sets all
/// the flags anew: those the mount has (for /proc, nosuid, nodev and noexec)
/// must be given again, or they are lost, so we ask statvfs(3) for them, as
/// runc does.
fn make_read_only(path: &Path, why: &str) -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    narrate!(mount(Some(path), path, None::<&str>, flags, None::<&str>), because why)
        .wrap_err_with(|| format!("cannot bind-mount {path:?} on itself"))?;
    remount_read_only(path)
}

/// Remount the bind mount at `path` read-only, with its own flags.
fn remount_read_only(path: &Path) -> Result<()> {
    remount(path, MsFlags::MS_RDONLY)
}

/// Remount the bind mount at `path` with `flags` added to its own.
fn remount(path: &Path, flags: MsFlags) -> Result<()> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | own_flags(path)?;
    narrate!(mount(None::<&str>, path, None::<&str>, flags, None::<&str>))
        .wrap_err_with(|| format!("cannot remount {path:?} with {flags:?}"))
}

/// The nosuid, nodev and noexec flags of the mount that `path` is on.
fn own_flags(path: &Path) -> Result<MsFlags> {
    let flags = statvfs(path)
        .wrap_err_with(|| format!("cannot read the flags of the mount {path:?} is on (statvfs)"))?
        .flags();
    let mut own = MsFlags::empty();
    own.set(MsFlags::MS_NOSUID, flags.contains(FsFlags::ST_NOSUID));
    own.set(MsFlags::MS_NODEV, flags.contains(FsFlags::ST_NODEV));
    own.set(MsFlags::MS_NOEXEC, flags.contains(FsFlags::ST_NOEXEC));
    Ok(own)
}
// ANCHOR_END: make_read_only

// ANCHOR: DEVICES
/// The devices a program may use, (name, major, minor) as the kernel's
/// devices.txt numbers them. No disk, no /dev/mem: what is not here cannot be
/// opened, and without CAP_MKNOD the command cannot make more.
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];
// ANCHOR_END: DEVICES

// ANCHOR: DEVICE_LINKS
/// The links that programs expect in /dev, (link, target).
const DEVICE_LINKS: [(&str, &str); 5] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/ptmx", "pts/ptmx"), // the container's own devpts, not the host's
];
// ANCHOR_END: DEVICE_LINKS

// ANCHOR: make_devices
/// mknod(2) each device, readable and writable by all, and link the rest.
/// In a user namespace, mknod is refused (a device made there would reach
/// any disk): the host's own devices are bind-mounted instead, as bubblewrap
/// and rootless Podman do (book: chapter 4, "The devices").
fn make_devices() -> Result<()> {
    let rootless = in_user_namespace();
    let umask_before = umask(Mode::empty()); // so that 0666 is what we get
    for (name, major, minor) in DEVICES {
        let path = format!("dev/{name}");
        if rootless {
            bind_host_device(&path)?;
            continue;
        }
        let (kind, mode) = (SFlag::S_IFCHR, Mode::from_bits_truncate(0o666));
        let call = narrate::Call::new(
            "mknod",
            vec![path.show(), format!("{}|{}", kind.show(), mode.show()), dev_t(major, minor)],
        );
        let made = mknod(path.as_str(), kind, mode, makedev(major, minor));
        call.returned(&made);
        made.wrap_err_with(|| format!("cannot create the device {path}"))?;
    }
    umask(umask_before);
    for (link, target) in DEVICE_LINKS {
        narrate!(symlink(target, in_new_root(link)))
            .wrap_err_with(|| format!("cannot link {link} to {target}"))?;
    }
    Ok(())
}

/// A device number as strace(1) shows it: `makedev(1, 3)`.
fn dev_t(major: u64, minor: u64) -> String {
    format!("makedev({major}, {minor})")
}

/// Bind-mount the host's /dev/NAME on `path`, an empty file made for it.
fn bind_host_device(path: &str) -> Result<()> {
    let host = format!("/{path}");
    fs::write(path, "").wrap_err_with(|| format!("cannot create {path}"))?;
    narrate!(mount(Some(host.as_str()), path, None::<&str>, MsFlags::MS_BIND, None::<&str>))
        .wrap_err_with(|| format!("cannot bind-mount the host's {host} on {path}"))
}

/// True in a user namespace other than the host's: the host's maps every
/// user ID to itself, "0 0 4294967295".
fn in_user_namespace() -> bool {
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}
// ANCHOR_END: make_devices
