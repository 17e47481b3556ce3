// ANCHOR: head
//! The filesystems the container sees (book: chapter 4, part 2).
//!
//! Step 3 made `rootfs/` the container's `/`, and left the host's old root
//! mounted at /oldrootfs, with the host's /proc, /sys and /dev below it. Now the
//! old root goes, and the container gets filesystems of its own: its
//! processes in /proc, a read-only /sys, a /dev with only harmless devices,
//! and a private /tmp.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use color_eyre::Section;
use color_eyre::eyre::{Result, WrapErr};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{chdir, pivot_root};

use crate::narrate;
// ANCHOR_END: head

// ANCHOR: enter_rootfs
/// Make the rootfs our `/`, and leave nothing of the host's tree behind.
/// pivot_root(2) wants the new root to be a mount point, so we bind-mount the
/// directory on itself first (book: chapter 3). Then we pivot as runc does,
/// with the new root as put_old too: `pivot_root(".", ".")` stacks the old root
/// on top of the new one, and a lazy unmount of "." takes it away, with all
/// that is mounted below it. No `oldrootfs/` is needed, so two containers
/// never share one (book: chapter 4, "the old root goes").
pub fn enter_rootfs(rootfs: &Path, verbose: bool) -> Result<()> {
    narrate(verbose, &format!("mount({rootfs:?}, {rootfs:?}, NULL, MS_BIND|MS_REC, NULL)"));
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(rootfs), rootfs, None::<&str>, flags, None::<&str>)
        .wrap_err_with(|| format!("cannot bind-mount {rootfs:?} on itself"))?;

    narrate(verbose, &format!("chdir({rootfs:?})"));
    chdir(rootfs).wrap_err_with(|| format!("cannot chdir to {rootfs:?}"))?;

    narrate(verbose, "pivot_root(\".\", \".\")");
    pivot_root(".", ".")
        .wrap_err_with(|| format!("pivot_root(\".\", \".\") in {rootfs:?} refused"))
        .suggestion(
            "pivot_root needs a rootfs on a private mount: see the book's Troubleshooting appendix",
        )?;

    narrate(verbose, "umount2(\".\", MNT_DETACH)");
    umount2(".", MntFlags::MNT_DETACH).wrap_err("cannot unmount the old root")?;

    narrate(verbose, "chdir(\"/\")");
    chdir("/").wrap_err("cannot chdir to the new root")
}
// ANCHOR_END: enter_rootfs

// ANCHOR: mount_filesystems
/// The filesystems every Linux program expects, made fresh for the container
/// instead of shared with the host: its own processes in /proc, a read-only
/// /sys, a /dev with only harmless devices, and a private /tmp. Each is
/// nosuid, nodev and noexec where it can be (book: chapter 4, "mounts").
pub fn mount_filesystems(verbose: bool) -> Result<()> {
    let (nosuid, nodev, noexec) = (MsFlags::MS_NOSUID, MsFlags::MS_NODEV, MsFlags::MS_NOEXEC);
    mount_fs("proc", "/proc", nosuid | nodev | noexec, "", verbose)?;
    make_read_only(&HOST_WIDE_PROC, verbose)?;
    mount_fs("sysfs", "/sys", MsFlags::MS_RDONLY | nosuid | nodev | noexec, "", verbose)?;
    mount_fs("tmpfs", "/dev", nosuid | noexec, "mode=755,size=65536k", verbose)?;
    make_devices(verbose)?;
    mount_fs("devpts", "/dev/pts", nosuid | noexec, "newinstance,ptmxmode=0666,mode=620", verbose)?;
    mount_fs("tmpfs", "/dev/shm", nosuid | nodev | noexec, "mode=1777,size=65536k", verbose)?;
    mount_fs("tmpfs", "/tmp", nosuid | nodev, "mode=1777", verbose)
}
// ANCHOR_END: mount_filesystems

// ANCHOR: mount_fs
/// mount(2) a fresh filesystem of type `fstype` on `target`, made if missing.
fn mount_fs(
    fstype: &str,
    target: &str,
    flags: MsFlags,
    options: &str,
    verbose: bool,
) -> Result<()> {
    fs::create_dir_all(target)
        .wrap_err_with(|| format!("cannot create the mount point {target}"))?;
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    narrate(
        verbose,
        &format!("mount({fstype:?}, {target:?}, {fstype:?}, {}, {options:?})", names.join("|")),
    );
    mount(Some(fstype), target, Some(fstype), flags, Some(options))
        .wrap_err_with(|| format!("cannot mount {fstype} on {target}"))
}
// ANCHOR_END: mount_fs

// ANCHOR: HOST_WIDE_PROC
/// The parts of the container's /proc that are not the container's but the
/// whole host's: kernel settings (writing kernel.core_pattern would make the
/// host's kernel run a program of ours as root), the magic SysRq key, IRQs
/// and buses. They stay readable; writing them is refused, as docker does.
const HOST_WIDE_PROC: [&str; 4] = ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"];
// ANCHOR_END: HOST_WIDE_PROC

// ANCHOR: make_read_only
/// Make each path that exists read-only: bind-mount it on itself, then
/// remount that bind mount read-only (a bind mount takes its flags only then).
/// A remount sets all the flags anew: those the mount has (for /proc, nosuid,
/// nodev and noexec) must be given again, or they are lost, so we ask
/// statvfs(3) for them, as runc does. Kernels differ in which of the paths
/// they have (sysrq-trigger is a build option): the narration names the
/// list, so that it reads the same on all.
fn make_read_only(paths: &[&str], verbose: bool) -> Result<()> {
    narrate(verbose, &format!("for each PATH of {paths:?} that this kernel has:"));
    narrate(verbose, "    mount(PATH, PATH, NULL, MS_BIND|MS_REC, NULL)");
    narrate(
        verbose,
        "    mount(NULL, PATH, NULL, MS_BIND|MS_REMOUNT|MS_RDONLY|its own flags, NULL)",
    );
    for path in paths.iter().filter(|path| Path::new(path).exists()) {
        mount(Some(*path), *path, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .wrap_err_with(|| format!("cannot bind-mount {path} on itself"))?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | own_flags(path)?;
        mount(None::<&str>, *path, None::<&str>, flags, None::<&str>)
            .wrap_err_with(|| format!("cannot make {path} read-only"))?;
    }
    Ok(())
}

/// The nosuid, nodev and noexec flags of the mount that `path` is on.
fn own_flags(path: &str) -> Result<MsFlags> {
    let flags = statvfs(path).wrap_err_with(|| format!("statvfs({path:?}) failed"))?.flags();
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
fn make_devices(verbose: bool) -> Result<()> {
    let umask_before = umask(Mode::empty()); // so that 0666 is what we get
    for (name, major, minor) in DEVICES {
        let path = format!("/dev/{name}");
        narrate(verbose, &format!("mknod({path:?}, S_IFCHR|0666, makedev({major}, {minor}))"));
        mknod(
            path.as_str(),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .wrap_err_with(|| format!("cannot create the device {path}"))?;
    }
    umask(umask_before);
    for (link, target) in DEVICE_LINKS {
        narrate(verbose, &format!("symlink({target:?}, {link:?})"));
        symlink(target, link).wrap_err_with(|| format!("cannot link {link} to {target}"))?;
    }
    Ok(())
}
// ANCHOR_END: make_devices
