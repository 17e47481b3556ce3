// ANCHOR: head
//! The command's privileges (book: chapter 4, part 3).
//!
//! Until step 3 the command ran as the host's root, with every capability.
//! Now our init starts it with less: the user it was given, Docker's default
//! capabilities but CAP_MKNOD (and none for another user), no way to gain
//! privileges back through a set-user-ID program (no_new_privs), and resource
//! limits. Init itself keeps its privileges: it runs only our code.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Read;

use caps::{CapSet, Capability};
use color_eyre::Section;
use color_eyre::eyre::{Result, WrapErr, eyre};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::prctl;
use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};
use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};

use crate::narrate::{self, Show, narrate};

#[cfg(test)]
mod tests;
// ANCHOR_END: head

// ANCHOR: restrict
/// Restrict the command's process, in an order that each step needs: the
/// limits while it may still raise them (CAP_SYS_RESOURCE), the capabilities
/// while it still has CAP_SETPCAP, the user while it still has CAP_SETUID and
/// CAP_SETGID, and no_new_privs last, just before the exec it is for.
pub fn restrict(user: &User, ulimits: &[Ulimit]) -> Result<()> {
    set_resource_limits(ulimits)?;
    drop_capabilities()?;
    switch_user(user)?;
    narrate!(prctl::set_no_new_privs()).wrap_err("cannot set no_new_privs")
}
// ANCHOR_END: restrict

// ANCHOR: Ulimit
/// A resource limit, from `--ulimit NAME=SOFT[:HARD]`.
#[derive(Clone)]
pub struct Ulimit {
    name: String,
    resource: Resource,
    soft: u64,
    hard: u64,
}
// ANCHOR_END: Ulimit

// ANCHOR: RESOURCES
/// The limits that `--ulimit` knows, by the names that `ulimit` and docker use.
const RESOURCES: [(&str, Resource); 8] = [
    ("as", Resource::RLIMIT_AS),
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("stack", Resource::RLIMIT_STACK),
];
// ANCHOR_END: RESOURCES

// ANCHOR: DEFAULT_ULIMITS
/// What every container gets unless `--ulimit` says otherwise: 1024 open
/// files, as old programs that use select(2) need, and up to 4096 for those
/// that ask, the kernel's own defaults. No nproc: it counts a UID's processes
/// on the whole host, not in the container (step 5's pids cgroup does that).
const DEFAULT_ULIMITS: [&str; 1] = ["nofile=1024:4096"];
// ANCHOR_END: DEFAULT_ULIMITS

// ANCHOR: parse_ulimit
/// clap's parser for `--ulimit`: NAME=SOFT[:HARD], each a number or `unlimited`.
pub fn parse_ulimit(text: &str) -> Result<Ulimit, String> {
    let names: Vec<&str> = RESOURCES.iter().map(|(name, _)| *name).collect();
    let usage = format!(
        "expected NAME=SOFT[:HARD] with NAME one of {}, e.g. nofile=1024:4096",
        names.join(", ")
    );
    let (name, values) = text.split_once('=').ok_or(&usage)?;
    let (_, resource) = RESOURCES.iter().find(|(known, _)| *known == name).ok_or(&usage)?;
    let (soft, hard) = values.split_once(':').unwrap_or((values, values));
    let number = |value: &str| match value {
        "unlimited" => Ok(RLIM_INFINITY),
        _ => value.parse::<u64>().map_err(|_| usage.clone()),
    };
    let (soft, hard) = (number(soft)?, number(hard)?);
    if soft > hard {
        return Err(format!("the soft limit {soft} is above the hard limit {hard}"));
    }
    Ok(Ulimit { name: name.to_string(), resource: *resource, soft, hard })
}
// ANCHOR_END: parse_ulimit

// ANCHOR: set_resource_limits
/// setrlimit(2) the defaults, then each `--ulimit`: the last word wins.
fn set_resource_limits(ulimits: &[Ulimit]) -> Result<()> {
    let defaults = DEFAULT_ULIMITS.map(|text| parse_ulimit(text).expect("the defaults parse"));
    for Ulimit { name, resource, soft, hard } in defaults.iter().chain(ulimits) {
        narrate!(setrlimit(*resource, *soft, *hard))
            .wrap_err_with(|| format!("the kernel refused --ulimit {name}={soft}:{hard}"))
            .suggestion(
                "no soft limit may pass its hard limit, and nofile not /proc/sys/fs/nr_open",
            )?;
    }
    Ok(())
}
// ANCHOR_END: set_resource_limits

// ANCHOR: KEPT_CAPABILITIES
/// The capabilities the command keeps: Docker's default set but CAP_MKNOD,
/// each with what it is for. Root in the container keeps these; another
/// `--user` gets none.
const KEPT_CAPABILITIES: [Capability; 13] = [
    Capability::CAP_CHOWN,            // chown files
    Capability::CAP_DAC_OVERRIDE,     // root may read and write any file it can see
    Capability::CAP_FSETID,           // keep set-group-ID bits on files it changes
    Capability::CAP_FOWNER,           // chmod files it does not own
    Capability::CAP_NET_RAW,          // ping, in its own network namespace
    Capability::CAP_SETGID,           // change group, as su and servers do
    Capability::CAP_SETUID,           // change user, as su and servers do
    Capability::CAP_SETFCAP,          // give files capabilities, as package installs do
    Capability::CAP_SETPCAP,          // drop capabilities of its own
    Capability::CAP_NET_BIND_SERVICE, // listen on ports below 1024
    Capability::CAP_SYS_CHROOT,       // chroot, as some servers do
    Capability::CAP_KILL,             // signal its processes whatever their user
    Capability::CAP_AUDIT_WRITE,      // write the audit log, as login does
];
// ANCHOR_END: KEPT_CAPABILITIES

// ANCHOR: DROPPED_CAPABILITIES
/// Every other capability is dropped. Why, for each: what it would let a
/// process in the container do to the host (capabilities(7) has the rest).
const DROPPED_CAPABILITIES: [(Capability, &str); 28] = [
    // Docker keeps CAP_MKNOD, as its devices cgroup stops a node for the
    // host's disk from opening. We have no devices cgroup, and the rootfs and
    // /dev allow device nodes: so it goes.
    (Capability::CAP_MKNOD, "make a node for the host's disk, and read it raw"),
    (
        Capability::CAP_DAC_READ_SEARCH,
        "open_by_handle_at reads any host file: the \"shocker\" escape",
    ),
    (Capability::CAP_LINUX_IMMUTABLE, "unset the immutable and append-only flags of files"),
    (Capability::CAP_NET_BROADCAST, "broadcast and listen to multicast"),
    (Capability::CAP_NET_ADMIN, "reconfigure interfaces, routes and firewall rules"),
    (Capability::CAP_IPC_LOCK, "lock memory in RAM beyond any limit"),
    (Capability::CAP_IPC_OWNER, "ignore the permissions of shared memory and queues"),
    (Capability::CAP_SYS_MODULE, "load code into the host's kernel"),
    (Capability::CAP_SYS_RAWIO, "raw I/O ports and memory: /dev/mem, iopl"),
    (Capability::CAP_SYS_PTRACE, "trace any process, read and write its memory"),
    (Capability::CAP_SYS_PACCT, "switch the host's process accounting"),
    (Capability::CAP_SYS_ADMIN, "mount, and half the kernel's other switches"),
    (Capability::CAP_SYS_BOOT, "reboot the host, or kexec another kernel"),
    (Capability::CAP_SYS_NICE, "raise its priority and starve the host"),
    (Capability::CAP_SYS_RESOURCE, "pass resource limits and quotas"),
    (Capability::CAP_SYS_TIME, "set the host's clock"),
    (Capability::CAP_SYS_TTY_CONFIG, "hang up the host's terminals"),
    (Capability::CAP_LEASE, "take leases on files it does not own"),
    (Capability::CAP_AUDIT_CONTROL, "change or switch off the host's auditing"),
    (Capability::CAP_MAC_OVERRIDE, "bypass AppArmor or SELinux"),
    (Capability::CAP_MAC_ADMIN, "reconfigure AppArmor or SELinux"),
    (Capability::CAP_SYSLOG, "read the kernel's log, and the kernel addresses in it"),
    (Capability::CAP_WAKE_ALARM, "set alarms that wake the host up"),
    (Capability::CAP_BLOCK_SUSPEND, "keep the host from suspending"),
    (Capability::CAP_AUDIT_READ, "read the host's audit log"),
    (Capability::CAP_PERFMON, "watch the whole host with perf"),
    (Capability::CAP_BPF, "load BPF programs into the kernel"),
    (Capability::CAP_CHECKPOINT_RESTORE, "set other processes' state, as checkpointing does"),
];
// ANCHOR_END: DROPPED_CAPABILITIES

// ANCHOR: drop_capabilities
/// Reduce every capability set to the kept ones: the bounding set (all that
/// may ever be held again), permitted and effective (what the command holds),
/// and empty the inheritable and ambient sets (what could pass across exec).
fn drop_capabilities() -> Result<()> {
    let kept: HashSet<Capability> = KEPT_CAPABILITIES.into_iter().collect();
    // Only what this kernel knows can be dropped: an older one has no CAP_BPF.
    // One that a kernel added after these lists were written goes too.
    let mut dropped: Vec<Capability> =
        caps::runtime::thread_all_supported().difference(&kept).copied().collect();
    dropped.sort_by_key(|capability| capability.index());
    for capability in dropped {
        let call = narrate::Call::new("prctl", vec!["PR_CAPBSET_DROP".into(), capability.show()])
            .because(why_dropped(capability));
        let result = caps::drop(None, CapSet::Bounding, capability);
        call.returned(&result);
        result.wrap_err_with(|| format!("cannot drop {capability}"))?;
    }
    let call = narrate::Call::new("prctl", vec!["PR_CAP_AMBIENT_CLEAR_ALL".into()]);
    let result = caps::clear(None, CapSet::Ambient);
    call.returned(&result);
    result.wrap_err("cannot clear the ambient capabilities")?;
    // Effective first: the kernel keeps effective within permitted.
    for (set, capabilities) in [
        (CapSet::Effective, &kept),
        (CapSet::Permitted, &kept),
        (CapSet::Inheritable, &HashSet::new()),
    ] {
        let call = narrate::Call::new("capset", vec![set.show(), capabilities.show()]);
        let result = caps::set(None, set, capabilities);
        call.returned(&result);
        result.wrap_err_with(|| format!("cannot set the {set:?} capabilities"))?;
    }
    Ok(())
}

/// What `capability` would let the command do to the host, from DROPPED_CAPABILITIES.
fn why_dropped(capability: Capability) -> String {
    let listed = DROPPED_CAPABILITIES.iter().find(|(dropped, _)| *dropped == capability);
    match listed {
        Some((_, why)) => why.to_string(),
        None => "newer than this program: not one we keep".to_string(),
    }
}
// ANCHOR_END: drop_capabilities

// ANCHOR: User
/// Who runs the command.
pub struct User {
    uid: Uid,
    gid: Gid,
    pub home: String,
}
// ANCHOR_END: User

// ANCHOR: find_user
/// Find `--user` (NAME or UID, then maybe :GROUP or :GID) in the *container's*
/// /etc/passwd: after pivot_root, that is the rootfs's, not the host's.
pub fn find_user(spec: &str) -> Result<User> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let passwd = read_rootfs_file("/etc/passwd")?;
    // name:password:UID:GID:comment:home:shell
    let entries: Vec<Vec<&str>> = passwd.lines().map(|line| line.split(':').collect()).collect();
    let entry =
        entries.iter().find(|fields| fields.len() == 7 && (fields[0] == user || fields[2] == user));
    let number = |field: &str, what| {
        field.parse::<u32>().wrap_err_with(|| {
            format!("cannot read user {user:?} in the container's /etc/passwd: {what} {field:?}")
        })
    };
    let (uid, gid, home) = match (entry, user.parse::<u32>()) {
        (Some(fields), _) => (number(fields[2], "UID")?, number(fields[3], "GID")?, fields[5]),
        (None, Ok(uid)) => (uid, uid, "/"), // a UID the rootfs has no name for
        (None, Err(_)) => {
            let names: Vec<&str> = entries.iter().map(|fields| fields[0]).collect();
            return Err(eyre!(
                "unknown user {user:?}: the container's /etc/passwd does not list it"
            ))
            .suggestion(format!("give a UID, or one of the rootfs's users: {}", names.join(", ")));
        }
    };
    let gid = match group {
        Some(group) => find_group(group)?,
        None => gid,
    };
    Ok(User { uid: Uid::from_raw(uid), gid: Gid::from_raw(gid), home: home.to_string() })
}
// ANCHOR_END: find_user

// ANCHOR: find_group
/// A GID: a number, or a name from the container's /etc/group.
fn find_group(group: &str) -> Result<u32> {
    let groups = read_rootfs_file("/etc/group")?;
    // name:password:GID:members
    let named = groups
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields[0] == group);
    let gid = named.map_or(group, |fields| fields.get(2).copied().unwrap_or_default());
    gid.parse()
        .wrap_err_with(|| {
            format!("unknown group {group:?}: the container's /etc/group does not list it")
        })
        .suggestion("give a GID, or a group from the rootfs's etc/group")
}
// ANCHOR_END: find_group

// ANCHOR: read_rootfs_file
/// The most of a rootfs's file that init reads: /etc/passwd and /etc/group are
/// a few lines.
const MOST_READ: u64 = 1 << 20;

/// Read a file of the rootfs, such as /etc/passwd, as a runtime must: the rootfs
/// is not ours to trust. Only a regular file, at most MOST_READ bytes (a link
/// to /dev/zero would read until our memory ran out), opened without blocking
/// (a FIFO there would hang us for good), and never through a /proc magic link
/// (openat2 with RESOLVE_NO_MAGICLINKS), the only way out of the rootfs left
/// after the pivot. A file that is missing reads as empty.
fn read_rootfs_file(path: &str) -> Result<String> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let resolve = ResolveFlag::RESOLVE_NO_MAGICLINKS;
    let how = format!("{{flags: {}, resolve: {}}}", flags.show(), resolve.show());
    let call = narrate::Call::new("openat2", vec!["AT_FDCWD".into(), path.show(), how]);
    let opened = openat2(AT_FDCWD, path, OpenHow::new().flags(flags).resolve(resolve));
    call.returned(&opened);
    let file = match opened {
        Ok(fd) => File::from(fd),
        Err(Errno::ENOENT) => return Ok(String::new()),
        Err(error) => {
            return Err(error).wrap_err_with(|| format!("cannot open the container's {path}"));
        }
    };
    let meta = file.metadata().wrap_err_with(|| format!("cannot stat the container's {path}"))?;
    if !meta.is_file() {
        return Err(eyre!("the container's {path} is not a regular file"))
            .suggestion(format!("make {path} in the rootfs a file, or leave --user out"));
    }
    let mut text = String::new();
    file.take(MOST_READ + 1)
        .read_to_string(&mut text)
        .wrap_err_with(|| format!("cannot read the container's {path}"))?;
    if text.len() as u64 > MOST_READ {
        return Err(eyre!("the container's {path} is larger than {MOST_READ} bytes"));
    }
    Ok(text)
}
// ANCHOR_END: read_rootfs_file

// ANCHOR: switch_user
/// Become `--user`: clear the supplementary groups first (the host's root may
/// have some), then the group, and the user last, since that gives up the
/// right to change the other two. A user other than root loses every capability here.
/// Rootless with one ID mapped, the runtime denied setgroups(2) for good, and
/// another user is refused with the fixes (book: chapter 2, Without root).
fn switch_user(user: &User) -> Result<()> {
    let setgroups_denied = fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s == "deny\n");
    if !setgroups_denied {
        let no_groups: &[Gid] = &[];
        narrate!(setgroups(no_groups)).wrap_err("cannot clear the supplementary groups")?;
    }
    match narrate!(setgid(user.gid)) {
        // Rootless, the container's user namespace maps root alone: EINVAL.
        Err(Errno::EINVAL) => {
            return Err(eyre!("cannot change to group {}: it is not mapped", user.gid))
                .wrap_err("rootless, the container has one user, root")
                .suggestion(
                    "leave --user out; or get IDs of your own: install the `uidmap` package and \
                     have root give you a range (`sudo usermod --add-subuids 100000-165535 \
                     --add-subgids 100000-165535 $USER`); or run as root (`sudo`)",
                );
        }
        result => result.wrap_err_with(|| format!("cannot change to group {}", user.gid))?,
    }
    narrate!(setuid(user.uid)).wrap_err_with(|| format!("cannot change to user {}", user.uid))
}
// ANCHOR_END: switch_user
