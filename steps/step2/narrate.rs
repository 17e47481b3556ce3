// ANCHOR: head
//! `-v`: the narration (book: chapter 1, "What -v shows"). With `-v`, each system call that
//! makes the container prints a line on stderr when it returns, as strace(1) shows calls and
//! in the spirit of contained.c's `=> doing X… done.`:
//!
//! ```text
//! => clone(SIGCHLD) = 4711
//! ```
//!
//! the call's name, the arguments it was given and what it returned: `0`, a PID, or an error
//! such as `EPERM`. The line is made from the very values the call was given, never written
//! by hand, so it cannot say what the code did not do. Three calls start something that
//! speaks next, and so print their line just before they run, ending in `…`: clone(2) and
//! fork(2) a new process, exec a new program (which, when it works, never returns). If one
//! of them fails, a second line gives its error.

use std::ffi::{CStr, CString};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::libc;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Pid, Uid};
// ANCHOR_END: head

// ANCHOR: verbose
/// Whether `-v` was given: set once, by `main`, before any call is made.
static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}
// ANCHOR_END: verbose

// ANCHOR: narrate
/// `narrate!(waitpid(child, None))` makes the call `waitpid(child, None)` and returns what it
/// returns; with `-v`, it also prints `=> waitpid(4711, None) = Exited(Pid(4711), 0)`, each
/// argument shown from its value (`Show`), the function by its own name (`fs::write` as
/// `write`). Each argument is evaluated once, in order, into a variable of its own (the
/// `@bind` rules), which is shown and then given to the call.
macro_rules! narrate {
    ($($call:ident)::+($($arg:expr),* $(,)?)) => {
        $crate::narrate::narrate!(@bind [$($call)::+] [] $($arg,)*)
    };
    (@bind [$($call:ident)::+] [$($bound:ident)*] $arg:expr, $($rest:expr,)*) => {{
        let arg = $arg;
        $crate::narrate::narrate!(@bind [$($call)::+] [$($bound)* arg] $($rest,)*)
    }};
    (@bind [$($call:ident)::+] [$($bound:ident)*]) => {{
        let call = $crate::narrate::Call::new(
            $crate::narrate::last_name(stringify!($($call)::+)),
            vec![$($crate::narrate::Show::show(&$bound)),*],
        );
        let result = $($call)::+($($bound),*);
        call.returned(&result);
        result
    }};
}
pub(crate) use narrate;

/// "write" for `fs::write`: the function's own name, without its module.
pub fn last_name(path: &'static str) -> &'static str {
    path.rsplit("::").next().unwrap_or(path).trim()
}

/// A call being made: its name and its arguments, shown.
pub struct Call {
    name: &'static str,
    args: Vec<String>,
}

impl Call {
    /// The call `name(args…)`, about to be made. One that starts something is
    /// narrated now: what it starts speaks next.
    pub fn new(name: &'static str, args: Vec<String>) -> Call {
        let call = Call { name, args };
        if call.starts_something() {
            call.say("…");
        }
        call
    }

    /// `=> NAME(ARGS) = RESULT`: the call returned `result`. For one that starts
    /// something, only an error is new.
    pub fn returned<T: Show, E: Show>(&self, result: &Result<T, E>) {
        match result {
            Ok(_) if self.starts_something() => {}
            Ok(value) => self.say(&format!("= {}", value.show())),
            Err(error) => self.say(&format!("= {}", error.show())),
        }
    }

    /// `=> NAME(ARGS) = ERROR`: the call failed, with `error`.
    pub fn failed(&self, error: &impl Show) {
        self.say(&format!("= {}", error.show()));
    }

    /// clone and fork start a process, exec a program.
    fn starts_something(&self) -> bool {
        matches!(self.name, "clone" | "fork") || self.name.starts_with("exec")
    }

    fn say(&self, end: &str) {
        if VERBOSE.load(Ordering::Relaxed) {
            eprintln!("=> {}({}) {end}", self.name, self.args.join(", "));
        }
    }
}
// ANCHOR_END: narrate

// ANCHOR: Show
/// How a value shows in the narration: as strace(1) would write it, where that is clearer
/// than Rust's `{:?}` (`SIGCHLD`, not `Some(17)`).
pub trait Show {
    fn show(&self) -> String;
}

impl<T: Show + ?Sized> Show for &T {
    fn show(&self) -> String {
        (**self).show()
    }
}

/// A call that returns nothing returned 0.
impl Show for () {
    fn show(&self) -> String {
        "0".to_string()
    }
}

/// What exec returns when it works: nothing ever, as it never returns.
impl Show for std::convert::Infallible {
    fn show(&self) -> String {
        match *self {}
    }
}

/// An error from std: its name too, when the kernel gave it.
impl Show for io::Error {
    fn show(&self) -> String {
        match self.raw_os_error() {
            Some(errno) => Errno::from_raw(errno).show(),
            None => self.to_string(),
        }
    }
}

impl Show for String {
    fn show(&self) -> String {
        self.as_str().show()
    }
}

impl Show for CString {
    fn show(&self) -> String {
        self.as_c_str().show()
    }
}

/// A list: `["echo", "hello"]`.
impl<T: Show> Show for [T] {
    fn show(&self) -> String {
        let items: Vec<String> = self.iter().map(Show::show).collect();
        format!("[{}]", items.join(", "))
    }
}

impl<T: Show> Show for Vec<T> {
    fn show(&self) -> String {
        self.as_slice().show()
    }
}

/// A C string that may be NULL, as mount(2)'s source, type and data.
impl Show for Option<&str> {
    fn show(&self) -> String {
        self.map_or("NULL".to_string(), |text| text.show())
    }
}

impl Show for Signal {
    fn show(&self) -> String {
        self.as_str().to_string()
    }
}

/// An interface's name and flags, as SIOCSIFFLAGS reads them: `{ifr_name: "lo", ifr_flags:
/// IFF_UP}`.
impl Show for libc::ifreq {
    fn show(&self) -> String {
        let name: Vec<u8> =
            self.ifr_name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        // SAFETY: the flags are the member of the union that SIOCSIFFLAGS reads, and
        // every bit pattern is a valid c_short.
        let flags = unsafe { self.ifr_ifru.ifru_flags };
        let flags = match flags as libc::c_int {
            libc::IFF_UP => "IFF_UP".to_string(),
            other => other.to_string(),
        };
        format!("{{ifr_name: {:?}, ifr_flags: {flags}}}", String::from_utf8_lossy(&name))
    }
}

/// waitpid's options: none is 0, as the kernel reads it.
impl Show for Option<WaitPidFlag> {
    fn show(&self) -> String {
        let flags = self.unwrap_or(WaitPidFlag::empty());
        flag_names(flags.iter_names().map(|(name, _)| name))
    }
}

/// Numbers and IDs, and what else Rust displays as strace(1) would: `4711`, `CAP_MKNOD`.
macro_rules! show_displayed {
    ($($kind:ty),*) => {$(
        impl Show for $kind {
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
show_displayed!(Pid, i32, Uid, Gid);

/// Strings in quotes, as C would write them, errors by their names (`EPERM`), and what
/// else Rust's `{:?}` writes as strace(1) would.
macro_rules! show_debugged {
    ($($kind:ty),*) => {$(
        impl Show for $kind {
            fn show(&self) -> String {
                format!("{self:?}")
            }
        }
    )*};
}
show_debugged!(Errno, str, CStr, WaitStatus);

/// Flags by their names, joined by `|`, as C ORs them: `CLONE_NEWUTS|CLONE_NEWPID`; none is 0.
macro_rules! show_flags {
    ($($kind:ty),*) => {$(
        impl Show for $kind {
            fn show(&self) -> String {
                flag_names(self.iter_names().map(|(name, _)| name))
            }
        }
    )*};
}
show_flags!(CloneFlags, MsFlags);

fn flag_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() { "0".to_string() } else { names.join("|") }
}
// ANCHOR_END: Show
