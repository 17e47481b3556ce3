// ANCHOR: head
//! Without root (book: chapter 2, "Without root"). Run by a user who is not
//! root, the runtime asks for one namespace more, a user namespace: the kernel
//! makes it first, and the others belong to it, so that its root, which is
//! the user, may make and use them. Root there has every capability, over what
//! the namespace owns only: its hostname, its mounts, its network, never the
//! host's files or devices. This file holds what that needs: a check that the
//! kernel allows it, and the ID maps that make the user root inside. Root may
//! ask for one too, `--userns-remap`: the container's root is then a host ID
//! that owns nothing (book: chapter 2, "As root, a user namespace too").

use std::fs;

use color_eyre::Section;
use color_eyre::eyre::{Result, WrapErr, eyre};
use nix::unistd::{AccessFlags, Gid, Pid, Uid, access, setgroups, setresgid, setresuid};

use crate::narrate::narrate;
// ANCHOR_END: head

// ANCHOR: user_namespace
/// Whether the container gets a user namespace: always when we are not root,
/// for the other namespaces need it; as root, when `--userns-remap` asks.
pub fn user_namespace(rootless: bool, remap: Option<u32>) -> Result<bool> {
    if !rootless {
        return Ok(remap.is_some());
    }
    if let Some(first) = remap {
        return Err(eyre!("cannot map the container to host IDs from {first}: only root may"))
            .suggestion("leave --userns-remap out: rootless, the container's root is already you");
    }
    check_user_namespaces()?;
    Ok(true)
}
// ANCHOR_END: user_namespace

// ANCHOR: REMAP_COUNT
/// How many IDs `--userns-remap` maps: 0 to 65535, `nobody` (65534) among them,
/// as many as a range in /etc/subuid.
const REMAP_COUNT: u32 = 65536;
// ANCHOR_END: REMAP_COUNT

// ANCHOR: write_id_maps
/// A new user namespace maps no user: until we write its maps, the child is
/// nobody there. Rootless, map its root, and only its root, to us, as
/// `unshare -r` does: the one mapping a user may write for themselves.
/// setgroups(2) must be denied first, or the child could drop a group that
/// denies us something (user_namespaces(7); book: chapter 2, Without root).
/// Root may map any IDs: `--userns-remap FIRST` maps 0-65535 to FIRST onwards.
pub fn write_id_maps(child: Pid, remap: Option<u32>) -> Result<()> {
    let maps = match remap {
        None => vec![
            ("setgroups", "deny".to_string()),
            ("uid_map", format!("0 {} 1", Uid::effective())),
            ("gid_map", format!("0 {} 1", Gid::effective())),
        ],
        Some(first) => vec![
            ("uid_map", format!("0 {first} {REMAP_COUNT}")),
            ("gid_map", format!("0 {first} {REMAP_COUNT}")),
        ],
    };
    for (file, map) in maps {
        let path = format!("/proc/{child}/{file}");
        narrate!(fs::write(&path, &map))
            .wrap_err_with(|| format!("cannot write {map:?} to {path}"))?;
    }
    Ok(())
}
// ANCHOR_END: write_id_maps

// ANCHOR: become_root
/// In the new process, as root with `--userns-remap`: our host IDs, root's,
/// are not mapped in the new namespace, so there we are nobody, and exec would
/// leave us no capability. clone(2) gave us every capability in it, so we may
/// become its root first, as contained.c does. Rootless, there is nothing to
/// do: our own ID is its root.
pub fn become_root(remap: Option<u32>) -> Result<()> {
    let Some(first) = remap else {
        return Ok(());
    };
    let (root, root_group, no_groups): (Uid, Gid, &[Gid]) =
        (Uid::from_raw(0), Gid::from_raw(0), &[]);
    narrate!(setgroups(no_groups)).wrap_err("cannot clear the supplementary groups")?;
    narrate!(setresgid(root_group, root_group, root_group))
        .wrap_err("cannot become group 0 in the user namespace")?;
    narrate!(setresuid(root, root, root)).wrap_err("cannot become root in the user namespace")?;
    // From here on we are host ID `first`, a stranger to the directory we were
    // started in, where the rootfs is: it must let others in.
    access(".", AccessFlags::X_OK)
        .wrap_err_with(|| format!("as host ID {first}, cannot enter the current directory"))
        .suggestion("with --userns-remap, run from a directory that others may enter (`chmod o+x`)")
}
// ANCHOR_END: become_root

// ANCHOR: USERNS_SWITCHES
/// The kernel settings that refuse user namespaces to users, (file, the value
/// that refuses, the setting as sysctl(8) names it with a value that allows,
/// why a kernel refuses).
pub const USERNS_SWITCHES: [(&str, &str, &str, &str); 3] = [
    (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "kernel.apparmor_restrict_unprivileged_userns=0",
        "Ubuntu 24.04 and later let only programs with an AppArmor profile use them",
    ),
    (
        "/proc/sys/kernel/unprivileged_userns_clone",
        "0",
        "kernel.unprivileged_userns_clone=1",
        "this kernel (Debian's patch) lets only root make them",
    ),
    (
        "/proc/sys/user/max_user_namespaces",
        "0",
        "user.max_user_namespaces=15000",
        "this kernel allows none",
    ),
];
// ANCHOR_END: USERNS_SWITCHES

// ANCHOR: check_user_namespaces
/// Rootless runs need the kernel to let users make user namespaces. Ask
/// first, and name the setting that refuses: under AppArmor's restriction the
/// namespace is made but its root may not mount, so the failure would come
/// later, as a puzzling EPERM.
pub fn check_user_namespaces() -> Result<()> {
    for (file, refuses, allows, why) in USERNS_SWITCHES {
        if fs::read_to_string(file).is_ok_and(|value| value.trim() == refuses) {
            return Err(eyre!("cannot run rootless: {file} is {refuses}: {why}")).suggestion(
                format!(
                    "run as root (`sudo`), or let users make user namespaces: \
                     `sudo sysctl {allows}` (book: Troubleshooting, Rootless runs refused)"
                ),
            );
        }
    }
    Ok(())
}
// ANCHOR_END: check_user_namespaces
