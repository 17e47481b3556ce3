//! tests/tools/attacks.rs: what an untrusted program in a container might try, for
//! tests/attacks.rs to run in each step's container. One file, no crate but std: the test
//! builds it with rustc, statically linked, and puts it in a copy of the rootfs.
//!
//!   attacks tiocsti TEXT   push TEXT, and a newline, into the terminal on stdin (TIOCSTI),
//!                          as if typed there: the host's shell would read it after the run
//!   attacks tiocsti64 TEXT the same with bit 32 of the request set, which the kernel drops:
//!                          a filter that compares all 64 bits misses it (CVE-2019-10063)
//!   attacks tiocsetd       give the terminal on stdin the line discipline N_NULL (TIOCSETD),
//!                          which throws away all it reads and writes: after the run, the
//!                          host's terminal would show nothing and take no key
//!   attacks getd           say the line discipline of the terminal on stdin (TIOCGETD), and
//!                          its mode and owner: on the host, after a run
//!   attacks syscalls       try system calls that Docker's default profile refuses, with
//!                          arguments that make each harmless, and print how each ended
//!   attacks thread         start a thread, as threaded programs do (clone3, then clone)
//!   attacks other-abi      on x86_64, make a system call of another ABI, i386's (int 0x80):
//!                          getpid there, whose number 20 is writev's on x86_64; a filter that
//!                          reads the number without the architecture lets it through

use std::ffi::{c_int, c_long, c_ulong};

unsafe extern "C" {
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
}

const TIOCSTI: c_ulong = 0x5412;
const TIOCSETD: c_ulong = 0x5423;
const TIOCGETD: c_ulong = 0x5424;
/// The line discipline that discards everything (linux/tty.h).
const N_NULL: c_int = 27;

/// errno after a failed call, by name, or "ok".
fn outcome(result: c_long) -> String {
    if result >= 0 {
        return "ok".to_string();
    }
    let error = std::io::Error::last_os_error();
    let name = match error.raw_os_error().unwrap_or(0) {
        1 => "EPERM",
        2 => "ENOENT",
        9 => "EBADF",
        14 => "EFAULT",
        22 => "EINVAL",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        _ => return format!("{error}"),
    };
    name.to_string()
}

fn tiocsti(request: c_ulong, name: &str, text: &str) {
    let mut result = 0;
    for byte in text.bytes().chain(std::iter::once(b'\n')) {
        // SAFETY: TIOCSTI reads one byte from the pointer it is given.
        result = unsafe { ioctl(0, request, &byte as *const u8) } as c_long;
        if result < 0 {
            break;
        }
    }
    println!("{name}: {}", outcome(result));
}

/// The system calls, x86_64 and aarch64 numbers, and arguments that make each fail harmlessly
/// where the kernel lets it through: a bad file, a bad command, an empty name.
fn syscalls() {
    #[cfg(target_arch = "x86_64")]
    const CALLS: [(&str, c_long); 12] = [
        ("keyctl", 250),
        ("bpf", 321),
        ("perf_event_open", 298),
        ("userfaultfd", 323),
        ("init_module", 175),
        ("open_by_handle_at", 304),
        ("clock_settime", 227),
        ("acct", 163),
        ("swapon", 167),
        ("reboot", 169),
        ("unshare", 272),
        ("clone3", 435),
    ];
    #[cfg(target_arch = "aarch64")]
    const CALLS: [(&str, c_long); 12] = [
        ("keyctl", 219),
        ("bpf", 280),
        ("perf_event_open", 241),
        ("userfaultfd", 282),
        ("init_module", 105),
        ("open_by_handle_at", 265),
        ("clock_settime", 112),
        ("acct", 89),
        ("swapon", 224),
        ("reboot", 142),
        ("unshare", 97),
        ("clone3", 435),
    ];
    for (name, number) in CALLS {
        // SAFETY: each is called with arguments that the kernel refuses before it acts:
        // no key command 0xdead, no BPF command 0xdead, a NULL attr, bad flags, an empty
        // module, a bad descriptor, a bad clock, a missing file, reboot's magic wrong, a
        // size of 0 for clone3. unshare(CLONE_NEWUSER) succeeds, in this process alone.
        let result = unsafe {
            match name {
                "keyctl" => syscall(number, 0xdead),
                "bpf" => syscall(number, 0xdead, 0, 0),
                "perf_event_open" => syscall(number, 0, 0, -1, -1, 0),
                "userfaultfd" => syscall(number, 0xdead),
                "init_module" => syscall(number, 0, 0, c"".as_ptr()),
                "open_by_handle_at" => syscall(number, -1, 0, 0),
                "clock_settime" => syscall(number, 0xdead, 0),
                "acct" => syscall(number, c"/nonexistent".as_ptr()),
                "swapon" => syscall(number, c"/nonexistent".as_ptr(), 0),
                "reboot" => syscall(number, 0, 0, 0, 0),
                "unshare" => syscall(number, 0x10000000), // CLONE_NEWUSER
                _ => syscall(number, 0, 0),               // clone3(NULL, 0)
            }
        };
        println!("{name}: {}", outcome(result));
    }
}

/// i386's getpid, through int 0x80: "ran" if the kernel answered it.
#[cfg(target_arch = "x86_64")]
fn other_abi() {
    let pid: i32;
    // SAFETY: i386's getpid takes no argument and changes nothing; the kernel may clobber
    // r8 to r11 on this path, which are marked so.
    unsafe {
        std::arch::asm!(
            "int 0x80",
            inlateout("eax") 20 => pid,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack)
        );
    }
    println!("i386 getpid: {}", if pid > 0 { "ran" } else { "refused" });
}

#[cfg(not(target_arch = "x86_64"))]
fn other_abi() {
    println!("no other ABI here");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["tiocsti", text] => tiocsti(TIOCSTI, "TIOCSTI", text),
        ["tiocsti64", text] => tiocsti(TIOCSTI | 1 << 32, "TIOCSTI | 1 << 32", text),
        ["tiocsetd"] => {
            // SAFETY: TIOCSETD reads one int from the pointer it is given.
            let result = unsafe { ioctl(0, TIOCSETD, &N_NULL as *const c_int) } as c_long;
            println!("TIOCSETD N_NULL: {}", outcome(result));
        }
        ["getd"] => {
            let mut discipline: c_int = -1;
            // SAFETY: TIOCGETD writes one int to the pointer it is given.
            unsafe { ioctl(0, TIOCGETD, &mut discipline as *mut c_int) };
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let terminal = std::fs::metadata("/proc/self/fd/0").expect("a terminal on stdin");
            let mode = terminal.permissions().mode() & 0o7777;
            println!("line discipline {discipline}, mode {mode:o}, owner {}", terminal.uid());
        }
        ["syscalls"] => syscalls(),
        ["other-abi"] => other_abi(),
        ["thread"] => {
            let thread = std::thread::spawn(|| "a thread ran");
            println!("{}", thread.join().unwrap());
        }
        _ => {
            eprintln!(
                "usage: attacks tiocsti TEXT | tiocsti64 TEXT | tiocsetd | getd | syscalls | thread \
                 | other-abi"
            );
            std::process::exit(2);
        }
    }
}
