//! The filter's unit tests: `docker_profile` run, instruction by instruction, by a small
//! interpreter of the classic BPF that the kernel runs, for every call number and the
//! arguments that matter. `cargo test --bin step4` runs them, no root needed.

use super::*;

/// What the kernel would answer: the filter run on one call, as the kernel runs it.
fn verdict_on(arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    let data = seccomp_data { nr: nr as i32, arch, instruction_pointer: 0, args };
    // SAFETY: seccomp_data is plain data; we read 32 bits at offsets inside it.
    let word = |offset: u32| unsafe {
        (&data as *const seccomp_data)
            .cast::<u8>()
            .add(offset as usize)
            .cast::<u32>()
            .read_unaligned()
    };
    let program = docker_profile();
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let op = program[pc];
        pc += 1;
        let code = u32::from(op.code);
        let jump = |test: u32| code == libc::BPF_JMP | test | libc::BPF_K;
        let taken = if code == libc::BPF_RET | libc::BPF_K {
            return op.k;
        } else if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
            a = word(op.k);
            continue;
        } else if jump(libc::BPF_JEQ) {
            a == op.k
        } else if jump(libc::BPF_JGT) {
            a > op.k
        } else if jump(libc::BPF_JGE) {
            a >= op.k
        } else if jump(libc::BPF_JSET) {
            a & op.k != 0
        } else {
            panic!("an instruction the interpreter does not know: {code:#x}")
        };
        pc += usize::from(if taken { op.jt } else { op.jf });
    }
}

fn verdict(nr: i64, args: [u64; 6]) -> u32 {
    verdict_on(AUDIT_ARCH, nr, args)
}

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

#[test]
fn every_call_of_dockers_list_is_allowed() {
    let lists = [&allowed::ALLOWED[..], &allowed::ALLOWED_HERE, &allowed::ALLOWED_NEW];
    for call in lists.concat() {
        assert_eq!(verdict(call, [0; 6]), ALLOW, "call {call}");
    }
}

#[test]
fn every_other_call_is_refused_with_eperm() {
    let lists = [&allowed::ALLOWED[..], &allowed::ALLOWED_HERE, &allowed::ALLOWED_NEW];
    let allowed = lists.concat();
    let conditional = [libc::SYS_ioctl, libc::SYS_clone, libc::SYS_personality, libc::SYS_socket];
    for call in 0..=i64::from(highest_known()) {
        if !allowed.contains(&call) && !conditional.contains(&call) && call != libc::SYS_clone3 {
            assert_eq!(verdict(call, [0; 6]), EPERM, "call {call}");
        }
    }
    for call in [libc::SYS_bpf, libc::SYS_keyctl, libc::SYS_unshare, libc::SYS_mount] {
        assert_eq!(verdict(call, [0; 6]), EPERM, "call {call}");
    }
}

#[test]
fn every_refused_call_is_refused_and_none_is_allowed() {
    let lists = [&allowed::ALLOWED[..], &allowed::ALLOWED_HERE, &allowed::ALLOWED_NEW];
    let allowed = lists.concat();
    for (calls, why) in REFUSED.iter().chain(&REFUSED_HERE) {
        for &call in *calls {
            assert!(!allowed.contains(&call), "call {call} ({why}) is in the allowed lists");
            assert_eq!(verdict(call, [0; 6]), EPERM, "call {call} ({why})");
        }
    }
}

/// A number above all the filter knows is a call newer than it: ENOSYS, so that a program
/// falls back, as on an older kernel. x32's numbers, bit 30 set, stay EPERM.
#[test]
fn calls_newer_than_the_filter_are_unknown() {
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let highest = i64::from(highest_known());
    assert!(highest >= libc::SYS_clone3, "{highest}");
    for call in [highest + 1, highest + 2, 1000, 0x3fff_ffff] {
        assert_eq!(verdict(call, [0; 6]), enosys, "call {call}");
    }
    assert_ne!(verdict(highest, [0; 6]), enosys, "the highest known call, {highest}");
    for call in [0x4000_0000, 0x4000_0000 | 1000, 0x7fff_ffff] {
        assert_eq!(verdict(call, [0; 6]), EPERM, "call {call:#x}");
    }
}

#[test]
fn clone3_is_unknown_so_that_glibc_falls_back_to_clone() {
    assert_eq!(verdict(libc::SYS_clone3, [0; 6]), libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
}

#[test]
fn the_four_conditional_calls_are_allowed_only_for_their_arguments() {
    let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
    assert_eq!(verdict(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), ALLOW);
    let user = libc::CLONE_NEWUSER as u64;
    assert_eq!(verdict(libc::SYS_clone, [user, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(verdict(libc::SYS_ioctl, [0, libc::TCGETS, 0, 0, 0, 0]), ALLOW);
    for request in [0x5412, 0x541C, 0x5412 | 1 << 32, 0x541C | 0xffff_ffff << 32] {
        assert_eq!(verdict(libc::SYS_ioctl, [0, request, 0, 0, 0, 0]), EPERM, "{request:#x}");
    }
    for personality in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(verdict(libc::SYS_personality, [personality, 0, 0, 0, 0, 0]), ALLOW);
    }
    let no_randomisation = libc::ADDR_NO_RANDOMIZE as u64;
    assert_eq!(verdict(libc::SYS_personality, [no_randomisation, 0, 0, 0, 0, 0]), EPERM);
    for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK] {
        assert_eq!(verdict(libc::SYS_socket, [family as u64, 0, 0, 0, 0, 0]), ALLOW, "{family}");
    }
    for family in [12, libc::AF_ALG, libc::AF_VSOCK, 46, -1] {
        assert_eq!(verdict(libc::SYS_socket, [family as u64, 0, 0, 0, 0, 0]), EPERM, "{family}");
    }
}

#[test]
fn another_abi_is_killed_and_x32_numbers_refused() {
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    assert_eq!(verdict_on(AUDIT_ARCH_I386, 1, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    // x32's calls are x86_64's numbers with bit 30 set: none is in a range.
    assert_eq!(verdict(0x4000_0000 | libc::SYS_read, [0; 6]), EPERM);
}

#[test]
fn the_filter_is_short() {
    // The kernel compiles every instruction at each container's start (chapter 4, Part 4).
    assert!(docker_profile().len() < 250, "{} instructions", docker_profile().len());
}
