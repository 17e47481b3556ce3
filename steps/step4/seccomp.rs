// ANCHOR: head
//! The command's system calls (book: chapter 4, part 4).
//!
//! Capabilities refuse what needs privilege. Every other system call the
//! kernel still answers, and some reach past the container: the keyrings and
//! the clock are not namespaced, bpf and perf watch the whole machine, and
//! every call is kernel code that may have a bug. A seccomp filter is a small
//! program the kernel runs at each system call, before the call itself: ours
//! lets through the calls of Docker's default profile, and refuses the rest
//! with EPERM, as if the command lacked a privilege.

mod allowed;

use std::collections::BTreeMap;
use std::env::consts::ARCH;

use color_eyre::eyre::{Result, WrapErr};
use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

use crate::narrate;
// ANCHOR_END: head

// ANCHOR: REFUSED
/// What Docker's profile leaves out, group by group, with what each would let
/// a process in the container do to the host. Many need a capability we drop
/// as well: the filter refuses them even to a process that got one back.
const REFUSED: [(&str, &str); 23] = [
    ("add_key, keyctl, request_key", "read or plant keys: keyrings are not namespaced"),
    ("bpf", "load programs into the host's kernel"),
    ("perf_event_open", "watch the whole host's CPUs, and leak kernel addresses"),
    ("userfaultfd", "stall the kernel on a page fault, the trick that wins its races"),
    ("io_uring_setup, io_uring_enter, io_uring_register", "I/O that no filter sees"),
    ("kexec_load, kexec_file_load", "boot the host into a kernel of its choice"),
    ("init_module, finit_module, delete_module", "load code into the host's kernel"),
    ("open_by_handle_at", "open any host file by its handle: the \"shocker\" escape"),
    ("settimeofday, clock_settime", "set the host's clock: time is not namespaced"),
    ("acct", "switch the host's process accounting"),
    ("swapon, swapoff", "add or remove the host's swap"),
    ("reboot", "reboot or halt the host"),
    (
        "mount, umount2, pivot_root, fsopen, fsmount, move_mount, open_tree",
        "uncover the masked paths, or mount the host's disks",
    ),
    ("unshare, setns, clone with CLONE_NEW*", "new namespaces: more kernel code to attack"),
    ("kcmp, pidfd_getfd, process_madvise", "reach into other processes' files and memory"),
    ("iopl, ioperm", "talk to the hardware's I/O ports"),
    ("mbind, set_mempolicy, move_pages, migrate_pages", "move the host's memory around"),
    ("syslog", "read the kernel's log, and the kernel addresses in it"),
    ("quotactl, sethostname, setdomainname", "administer the host: quotas, names"),
    ("fanotify_init, lookup_dcookie", "watch the file activity of whole mounts"),
    ("vhangup", "hang up the terminal"),
    ("ioctl TIOCSTI, TIOCLINUX", "type into the terminal: the host's shell would read it"),
    ("any call of another ABI (i386, x32)", "a second table of calls, numbered otherwise"),
];
// ANCHOR_END: REFUSED

// ANCHOR: refuse_system_calls
/// Install the filters, the last restriction of all: a filter binds our own
/// code too, from its first instruction on, and only a process with
/// no_new_privs (or CAP_SYS_ADMIN) may install one.
pub fn refuse_system_calls(verbose: bool) -> Result<()> {
    for (calls, why) in REFUSED {
        narrate(verbose, &format!("seccomp: refuse {calls}: {why}"));
    }
    narrate(verbose, "seccomp(SECCOMP_SET_MODE_FILTER, 0, {Docker's calls: allow, others: EPERM})");
    install(docker_profile()?)?;
    narrate(verbose, "seccomp(SECCOMP_SET_MODE_FILTER, 0, {clone3: ENOSYS, others: allow})");
    install(clone3_unknown()?)
}
// ANCHOR_END: refuse_system_calls

// ANCHOR: docker_profile
/// Docker's calls, allowed: most whatever their arguments, four only for
/// some. Everything else fails with EPERM. seccompiler checks the
/// architecture first: a call through another ABI kills the process.
fn docker_profile() -> Result<SeccompFilter> {
    use SeccompCmpOp::{Eq, Lt, MaskedEq, Ne};
    let always = allowed::ALLOWED.into_iter().chain(allowed::ALLOWED_HERE);
    let always = always.chain(allowed::ALLOWED_NEW);
    let mut calls: BTreeMap<i64, Vec<SeccompRule>> = always.map(|call| (call, vec![])).collect();
    // The other four: allowed when one of their rules holds.
    calls.insert(libc::SYS_ioctl, vec![rule(&[(1, Ne, TIOCSTI), (1, Ne, TIOCLINUX)])?]);
    calls.insert(libc::SYS_clone, vec![rule(&[(0, MaskedEq(NEW_NAMESPACES), 0)])?]);
    let personalities = PERSONALITIES.map(|value| rule(&[(0, Eq, value)]));
    calls.insert(libc::SYS_personality, personalities.into_iter().collect::<Result<_>>()?);
    let families = SOCKET_FAMILIES.map(|family| rule(&[(0, Eq, family)]));
    let sockets = [rule(&[(0, Lt, 12)])].into_iter().chain(families);
    calls.insert(libc::SYS_socket, sockets.collect::<Result<_>>()?);
    let refuse = SeccompAction::Errno(libc::EPERM as u32);
    Ok(SeccompFilter::new(calls, refuse, SeccompAction::Allow, ARCH.try_into()?)?)
}
// ANCHOR_END: docker_profile

// ANCHOR: clone3_unknown
/// clone3 passes its flags in memory, where no filter can read them: so it
/// cannot be allowed only without CLONE_NEW*, as clone is. It must fail with
/// ENOSYS, "no such call", for glibc to fall back to clone: with EPERM, no
/// thread could start. Of two filters' errors, the kernel returns the one of
/// the filter installed last: this one.
fn clone3_unknown() -> Result<SeccompFilter> {
    let calls = BTreeMap::from([(libc::SYS_clone3, vec![])]);
    let unknown = SeccompAction::Errno(libc::ENOSYS as u32);
    Ok(SeccompFilter::new(calls, SeccompAction::Allow, unknown, ARCH.try_into()?)?)
}
// ANCHOR_END: clone3_unknown

// ANCHOR: conditions
/// TIOCSTI pushes a character into a terminal's input, TIOCLINUX's
/// subcommand 2 pastes its selection there: either types into the host's shell.
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;

/// The flags that make clone start new namespaces.
const NEW_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// personality(2) may only set Linux's own (0 and 8 with UNAME26, 0x20000) or
/// ask (0xffffffff): others switch off address randomisation, for example.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/// The address families socket(2) may open besides 0 to 11 (AF_UNIX,
/// AF_INET…): not DECnet (12), AF_ALG (38), AF_VSOCK (40) and other rare ones
/// whose kernel code has had bugs that few noticed.
const SOCKET_FAMILIES: [u64; 25] = [
    13, 14, 15, 16, 17, 18, 21, 22, 24, 26, 27, 28, 29, 30, 31, 32, 33, 35, 36, 39, 41, 42, 43, 44,
    45,
];
// ANCHOR_END: conditions

// ANCHOR: rule
/// A rule on arguments: each (argument, comparison, value) must hold. The
/// kernel takes these arguments as 32-bit ints, so compare the low 32 bits
/// alone: a filter that compared 64 let `TIOCSTI | 1 << 32` through
/// (CVE-2019-10063), which the kernel then read as TIOCSTI.
fn rule(conditions: &[(u8, SeccompCmpOp, u64)]) -> Result<SeccompRule> {
    let conditions = conditions
        .iter()
        .map(|(arg, op, value)| {
            SeccompCondition::new(*arg, SeccompCmpArgLen::Dword, op.clone(), *value)
        })
        .collect::<Result<_, _>>()?;
    Ok(SeccompRule::new(conditions)?)
}
// ANCHOR_END: rule

// ANCHOR: install
/// seccomp(2) with SECCOMP_SET_MODE_FILTER: from now on the kernel runs the
/// filter at each system call of this process and of everything it starts.
fn install(filter: SeccompFilter) -> Result<()> {
    let program: BpfProgram = filter.try_into()?;
    seccompiler::apply_filter(&program).wrap_err("the kernel refused the seccomp filter")
}
// ANCHOR_END: install
