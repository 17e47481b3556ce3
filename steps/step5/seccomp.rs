// ANCHOR: head
//! The command's system calls (book: chapter 4, part 4).
//!
//! Capabilities refuse what needs privilege. Every other system call the
//! kernel still answers, and some reach past the container: the keyrings and
//! the clock are not namespaced, bpf and perf watch the whole machine, and
//! every call is kernel code that may have a bug. A seccomp filter is a small
//! program the kernel runs at each system call, before the call itself: it
//! reads the call's number and arguments, and returns a verdict. Ours allows
//! the calls of Docker's default profile, and refuses the rest with EPERM, as
//! if the command lacked a privilege.

mod allowed;
#[cfg(test)]
mod tests;

use std::mem::offset_of;

use color_eyre::eyre::{Result, WrapErr};
use nix::errno::Errno;
use nix::libc::{self, seccomp_data, sock_filter, sock_fprog};

use crate::narrate::{self, Show};
// ANCHOR_END: head

// ANCHOR: REFUSED
/// What Docker's profile leaves out, group by group, with what each would let
/// a process in the container do to the host. Many need a capability we drop
/// as well: the filter refuses them even to a process that got one back. (The
/// calls it refuses for some arguments only are at their checks, below: clone
/// with CLONE_NEW*, ioctl TIOCSTI and TIOCLINUX, and rare socket families and
/// personalities; and every call of another ABI.) The unit tests check that
/// the filter refuses each of them; and the filter counts them among the calls
/// it knows, below the newer ones it answers ENOSYS.
const REFUSED: [(&[i64], &str); 20] = [
    (
        &[libc::SYS_add_key, libc::SYS_keyctl, libc::SYS_request_key],
        "read or plant keys: keyrings are not namespaced",
    ),
    (&[libc::SYS_bpf], "load programs into the host's kernel"),
    (&[libc::SYS_perf_event_open], "watch the whole host's CPUs, and leak kernel addresses"),
    (&[libc::SYS_userfaultfd], "stall the kernel on a page fault, the trick that wins its races"),
    (
        &[libc::SYS_io_uring_setup, libc::SYS_io_uring_enter, libc::SYS_io_uring_register],
        "I/O that no filter sees",
    ),
    (
        &[libc::SYS_kexec_load, libc::SYS_kexec_file_load],
        "boot the host into a kernel of its choice",
    ),
    (
        &[libc::SYS_init_module, libc::SYS_finit_module, libc::SYS_delete_module],
        "load code into the host's kernel",
    ),
    (&[libc::SYS_open_by_handle_at], "open any host file by its handle: the \"shocker\" escape"),
    (
        &[libc::SYS_settimeofday, libc::SYS_clock_settime],
        "set the host's clock: time is not namespaced",
    ),
    (&[libc::SYS_acct], "switch the host's process accounting"),
    (&[libc::SYS_swapon, libc::SYS_swapoff], "add or remove the host's swap"),
    (&[libc::SYS_reboot], "reboot or halt the host"),
    (
        &[
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_fsopen,
            libc::SYS_fsmount,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
        ],
        "uncover the masked paths, or mount the host's disks",
    ),
    (&[libc::SYS_unshare, libc::SYS_setns], "new namespaces: more kernel code to attack"),
    (
        &[libc::SYS_kcmp, libc::SYS_pidfd_getfd, libc::SYS_process_madvise],
        "reach into other processes' files and memory",
    ),
    (
        &[libc::SYS_mbind, libc::SYS_set_mempolicy, libc::SYS_move_pages, libc::SYS_migrate_pages],
        "move the host's memory around",
    ),
    (&[libc::SYS_syslog], "read the kernel's log, and the kernel addresses in it"),
    (
        &[libc::SYS_quotactl, libc::SYS_sethostname, libc::SYS_setdomainname],
        "administer the host: quotas, names",
    ),
    (
        &[libc::SYS_fanotify_init, libc::SYS_lookup_dcookie],
        "watch the file activity of whole mounts",
    ),
    (&[libc::SYS_vhangup], "hang up the terminal"),
];

/// x86_64 has two more, for its I/O ports.
#[cfg(target_arch = "x86_64")]
const REFUSED_HERE: [(&[i64], &str); 1] =
    [(&[libc::SYS_iopl, libc::SYS_ioperm], "talk to the hardware's I/O ports")];

#[cfg(target_arch = "aarch64")]
const REFUSED_HERE: [(&[i64], &str); 0] = [];
// ANCHOR_END: REFUSED

// ANCHOR: refuse_system_calls
/// Install the filter, the last restriction of all: it binds our own code
/// too, from the next instruction on, and only a process with no_new_privs
/// (or CAP_SYS_ADMIN) may install one. The command inherits it, and so does
/// every process it starts; no process can ever remove it.
pub fn refuse_system_calls() -> Result<()> {
    let program = docker_profile();
    let filter = sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    let call = narrate::Call::new(
        "seccomp",
        vec!["SECCOMP_SET_MODE_FILTER".into(), 0.show(), format!("{{len: {}}}", filter.len)],
    );
    // SAFETY: `filter` points to `program`, `len` instructions long, which the
    // kernel copies before the call returns.
    let set =
        unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &filter) };
    let set = Errno::result(set).map(drop);
    call.returned(&set);
    set.wrap_err("the kernel refused the seccomp filter")
}
// ANCHOR_END: refuse_system_calls

// ANCHOR: docker_profile
/// The filter, instruction by instruction: the machine's architecture, then
/// the four calls that Docker allows only for some arguments, then clone3,
/// then the calls newer than the filter, then every other allowed call, as
/// ranges of numbers. The kernel runs it from the top; each jump skips forward.
fn docker_profile() -> Vec<sock_filter> {
    let mut program = vec![
        load(offset_of!(seccomp_data, arch)),
        jump(libc::BPF_JEQ, AUDIT_ARCH, 1, 0),
        verdict(libc::SECCOMP_RET_KILL_PROCESS), // another ABI: its numbers mean other calls
        load(offset_of!(seccomp_data, nr)),
    ];
    for (call, check) in [
        (libc::SYS_ioctl, not_a_typing_request()),
        (libc::SYS_clone, no_new_namespace()),
        (libc::SYS_personality, one_of(0, &PERSONALITIES)),
        (libc::SYS_socket, one_of(0, &SOCKET_FAMILIES)),
    ] {
        // Not this call: skip its check, which ends in a verdict either way.
        program.push(jump(libc::BPF_JEQ, call as u32, 0, check.len()));
        program.extend(check);
    }
    // clone3's flags are in memory, where no filter can read them, so it cannot
    // be allowed without CLONE_NEW* as clone is. "No such call" makes glibc
    // fall back to clone: with EPERM, no thread could start.
    program.push(jump(libc::BPF_JEQ, libc::SYS_clone3 as u32, 0, 1));
    program.push(verdict(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    program.extend(newer_than_the_filter());
    program.extend(allowed_ranges());
    program
}

/// A call with a number above every one the filter knows is newer than it:
/// answer "no such call" (ENOSYS), as runc does, not EPERM, so that a program
/// falls back to an older call as it would on an older kernel (glibc's
/// faccessat2 falls back to faccessat on ENOSYS, and fails on EPERM). Numbers
/// from 0x40000000 up are x32's, another ABI: they stay refused.
fn newer_than_the_filter() -> Vec<sock_filter> {
    vec![
        jump(libc::BPF_JGT, highest_known(), 0, 3), // known: on to the ranges
        jump(libc::BPF_JGE, X32_CALLS, 1, 0),
        verdict(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        verdict(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ]
}

/// The highest call number the filter knows: allowed, refused or checked.
fn highest_known() -> u32 {
    let allowed =
        allowed::ALLOWED.iter().chain(&allowed::ALLOWED_HERE).chain(&allowed::ALLOWED_NEW);
    let refused = REFUSED.iter().chain(&REFUSED_HERE).flat_map(|(calls, _)| calls.iter());
    let checked = [libc::SYS_ioctl, libc::SYS_clone, libc::SYS_clone3, libc::SYS_personality];
    let checked = checked.iter().chain([libc::SYS_socket].iter());
    allowed.chain(refused).chain(checked).map(|&call| call as u32).max().unwrap_or(0)
}
// ANCHOR_END: docker_profile

// ANCHOR: allowed_ranges
/// Every call that Docker allows whatever its arguments, as ranges of
/// numbers: two instructions a range, where one a call would take five times
/// as many (and the kernel compiles each instruction when it installs the
/// filter). The ranges are in order: past one's end, try the next; else the
/// number is allowed if it is past the range's start, refused if not. Last,
/// the two verdicts that the ranges jump to.
fn allowed_ranges() -> Vec<sock_filter> {
    let mut calls: Vec<u32> =
        allowed::ALLOWED.iter().chain(&allowed::ALLOWED_HERE).map(|&c| c as u32).collect();
    calls.extend(allowed::ALLOWED_NEW.iter().map(|&call| call as u32));
    calls.sort_unstable();
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for call in calls {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == call => *last = call,
            _ => ranges.push((call, call)),
        }
    }
    let mut program = Vec::new();
    for (i, (first, last)) in ranges.iter().enumerate() {
        let after = 2 * (ranges.len() - 1 - i); // the instructions of the ranges after this one
        program.push(jump(libc::BPF_JGT, *last, 1, 0));
        program.push(jump(libc::BPF_JGE, *first, after + 1, after));
    }
    program.push(verdict(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32)); // any other call
    program.push(verdict(libc::SECCOMP_RET_ALLOW));
    program
}
// ANCHOR_END: allowed_ranges

// ANCHOR: checks
/// ioctl(fd, request, …) with any request but two: TIOCSTI pushes a character
/// into a terminal's input, TIOCLINUX's subcommand 3 (TIOCL_PASTESEL) pastes
/// the console's selection there; either types into the host's shell.
fn not_a_typing_request() -> Vec<sock_filter> {
    vec![
        load(argument(1)),
        jump(libc::BPF_JEQ, TIOCSTI, 2, 0),
        jump(libc::BPF_JEQ, TIOCLINUX, 1, 0),
        verdict(libc::SECCOMP_RET_ALLOW),
        verdict(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ]
}

/// clone(flags, …) without a flag that makes a new namespace.
fn no_new_namespace() -> Vec<sock_filter> {
    vec![
        load(argument(0)),
        jump(libc::BPF_JSET, NEW_NAMESPACES, 0, 1),
        verdict(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        verdict(libc::SECCOMP_RET_ALLOW),
    ]
}

/// A call whose argument `n` is one of `values`.
fn one_of(n: usize, values: &[u32]) -> Vec<sock_filter> {
    let mut check = vec![load(argument(n))];
    for (i, value) in values.iter().enumerate() {
        check.push(jump(libc::BPF_JEQ, *value, values.len() - i, 0)); // to the allow
    }
    check.push(verdict(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32));
    check.push(verdict(libc::SECCOMP_RET_ALLOW));
    check
}
// ANCHOR_END: checks

// ANCHOR: conditions
/// The two terminal requests that type (ioctl_tty(2)).
const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541C;

/// The flags that make clone start new namespaces.
const NEW_NAMESPACES: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

/// personality(2) may only set Linux's own (0, and 8 for 32-bit uname) with or
/// without UNAME26 (0x20000), or ask (0xffffffff): others switch off address
/// randomisation, for example.
const PERSONALITIES: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/// The address families socket(2) may open: AF_UNIX, AF_INET and the others
/// up to 11, and more, but not DECnet (12), AF_ALG (38), AF_VSOCK (40) and
/// other rare ones whose kernel code has had bugs that few noticed. Docker's
/// rule is the other way round, a denylist of AF_VSOCK and AF_ALG: an
/// allowlist also refuses the families that a kernel adds later, unread. A
/// program that asks for one gets EPERM, as Docker's refusals answer.
const SOCKET_FAMILIES: [u32; 37] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 21, 22, 24, 26, 27, 28, 29, 30,
    31, 32, 33, 35, 36, 39, 41, 42, 43, 44, 45,
];
// ANCHOR_END: conditions

// ANCHOR: instructions
/// x32's calls are x86_64's numbers with this bit set (__X32_SYSCALL_BIT).
const X32_CALLS: u32 = 0x4000_0000;

/// The architecture the numbers of `allowed.rs` are for, as the kernel names
/// it in `seccomp_data.arch` (linux/audit.h).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// A = the 32 bits at `offset` in the call's `seccomp_data`.
fn load(offset: usize) -> sock_filter {
    sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: offset as u32,
    }
}

/// Where the low 32 bits of the call's argument `n` are. The kernel reads
/// ioctl's request, clone's flags and the others as 32-bit ints, so these are
/// the bits that count: a filter that compared all 64 let `TIOCSTI | 1 << 32`
/// through (CVE-2019-10063), which the kernel then read as TIOCSTI. (Low bits
/// first: x86_64 and aarch64 are little-endian.)
fn argument(n: usize) -> usize {
    offset_of!(seccomp_data, args) + 8 * n
}

/// If A `test` `value` (BPF_JEQ: ==, BPF_JGT: >, BPF_JGE: >=, BPF_JSET: has
/// any of its bits), skip `then` instructions, else `otherwise`.
fn jump(test: u32, value: u32, then: usize, otherwise: usize) -> sock_filter {
    let skip = |n: usize| u8::try_from(n).expect("a filter jumps 255 instructions at most");
    let code = (libc::BPF_JMP | test | libc::BPF_K) as u16;
    sock_filter { code, jt: skip(then), jf: skip(otherwise), k: value }
}

/// Stop, with this verdict on the call.
fn verdict(verdict: u32) -> sock_filter {
    sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: verdict }
}
// ANCHOR_END: instructions
