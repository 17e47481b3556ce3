//! What a learner writes, stage by stage: the new pieces of each step (their bodies are the
//! skeleton's `todo!()`s), and the plausible mistakes that the stage checks must catch.

use crate::workshop::StageId;

/// A function of a step whose body the learner writes.
pub struct Piece {
    pub stage: StageId,
    /// The file in `steps/stepN/`.
    pub file: &'static str,
    pub function: &'static str,
    /// What to do, and where in the book to read: the `todo!()`'s message.
    pub todo: &'static str,
}

impl Piece {
    /// The `todo!()` message, which starts with the stage: "3.2: …".
    pub fn message(&self) -> String {
        format!("{}: {}", self.stage, self.todo)
    }
}

/// Every piece, stage by stage, in the order a learner meets them.
pub const PIECES: &[Piece] = &[
    Piece {
        stage: StageId::of("1.1"),
        file: "main.rs",
        function: "start_child",
        todo: "clone(2) a child, with SIGCHLD as its exit signal, that execs /proc/self/exe \
               child and the arguments after `run` \
               (chapter 1, The diff: start_child (book/src/step1.md#the-diff))",
    },
    Piece {
        stage: StageId::of("1.2"),
        file: "main.rs",
        function: "child",
        todo: "become the command with std's Command::exec; if that returns, report the error \
               and return 127 for a command that is not there, 126 for one that cannot run \
               (chapter 1, The diff: child (book/src/step1.md#the-diff))",
    },
    Piece {
        stage: StageId::of("2.1"),
        file: "main.rs",
        function: "namespaces",
        todo: "return the five CLONE_NEW* flags: UTS, PID, mount, IPC and network \
               (chapter 2, The idea (book/src/step2.md#the-idea))",
    },
    Piece {
        stage: StageId::of("2.2"),
        file: "main.rs",
        function: "make_mounts_private",
        todo: "mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL), so that nothing the \
               container mounts reaches the host \
               (chapter 2, Shared mounts (book/src/step2.md#shared-mounts))",
    },
    Piece {
        stage: StageId::of("2.3"),
        file: "main.rs",
        function: "set_hostname",
        todo: "sethostname(2) to --hostname \
               (chapter 2, The diff: set_hostname (book/src/step2.md#the-diff))",
    },
    Piece {
        stage: StageId::of("2.3"),
        file: "main.rs",
        function: "bring_up_loopback",
        todo: "bring lo up: on any socket, ioctl SIOCSIFFLAGS with an ifreq naming lo with \
               IFF_UP \
               (chapter 2, The diff: bring_up_loopback (book/src/step2.md#the-diff))",
    },
    Piece {
        stage: StageId::of("2.4"),
        file: "rootless.rs",
        function: "write_id_maps",
        todo: "rootless (no remap): write \"deny\" to /proc/CHILD/setgroups, then \"0 UID 1\" \
               to its uid_map and \"0 GID 1\" to its gid_map, with our effective IDs; with \
               --userns-remap FIRST: \"0 FIRST 65536\" to both maps \
               (chapter 2, Without root: a user namespace (book/src/step2-rootless.md#without-root-a-user-namespace))",
    },
    Piece {
        stage: StageId::of("3.1"),
        file: "main.rs",
        function: "check_rootfs",
        todo: "refuse a --rootfs that is no directory, or has no bin/sh, before anything is \
               made, with a suggestion \
               (chapter 3, The diff: check_rootfs (book/src/step3.md#the-diff))",
    },
    Piece {
        stage: StageId::of("3.2"),
        file: "main.rs",
        function: "enter_rootfs",
        todo: "bind-mount the rootfs on itself, make rootfs/oldrootfs, pivot_root into the \
               rootfs with the old root there, then chdir(\"/\") \
               (chapter 3, Why the bind mount (book/src/step3.md#why-the-bind-mount))",
    },
    Piece {
        stage: StageId::of("4.1"),
        file: "init.rs",
        function: "block_signals",
        todo: "block the FORWARDED signals and SIGCHLD, and return them as a SigSet \
               (chapter 4, Part 1: PID 1 and signals (book/src/step4-1-init.md#part-1-pid-1-and-signals))",
    },
    Piece {
        stage: StageId::of("4.1"),
        file: "init.rs",
        function: "supervise",
        todo: "reap every child that ends with waitpid(-1, WNOHANG | WUNTRACED), return pid's \
               status (or SIGCONT it, if Ctrl-Z stopped it), and pass the signals read from a \
               signalfd on to pid, but SIGCHLD and those from the kernel \
               (chapter 4, Part 1: PID 1 and signals (book/src/step4-1-init.md#part-1-pid-1-and-signals))",
    },
    Piece {
        stage: StageId::of("4.1"),
        file: "init.rs",
        function: "start_command",
        todo: "fork(2); in the child, run become_command and exit with its status, never \
               returning \
               (chapter 4, Part 1: PID 1 and signals (book/src/step4-1-init.md#part-1-pid-1-and-signals))",
    },
    Piece {
        stage: StageId::of("4.1"),
        file: "init.rs",
        function: "die_with_runtime",
        todo: "close our copy of the pipe's write end, prctl(PR_SET_PDEATHSIG, SIGKILL), then \
               make sure the runtime lives: reading the pipe must say EAGAIN \
               (chapter 4, Part 1: PID 1 and signals (book/src/step4-1-init.md#part-1-pid-1-and-signals))",
    },
    Piece {
        stage: StageId::of("4.2"),
        file: "filesystems.rs",
        function: "enter_rootfs",
        todo: "with --writable, bind-mount the rootfs on itself and chdir into it, else \
               enter_a_layer_over it \
               (chapter 4, Part 2: The code (book/src/step4-2-filesystems.md#the-code))",
    },
    Piece {
        stage: StageId::of("4.2"),
        file: "filesystems.rs",
        function: "drop_old_root",
        todo: "pivot_root(\".\", \".\"), umount2(\".\", MNT_DETACH), chdir(\"/\") \
               (chapter 4, Part 2: The old root goes, in The idea (book/src/step4-2-filesystems.md#the-idea))",
    },
    Piece {
        stage: StageId::of("4.2"),
        file: "filesystems.rs",
        function: "mount_filesystems",
        todo: "mount proc, a read-only sys, dev with its devices, dev/pts, dev/shm and tmp, \
               each with its flags, in the new root (paths relative to it), then \
               protect_host_paths \
               (chapter 4, Part 2: The filesystems the container sees (book/src/step4-2-filesystems.md#part-2-the-filesystems-the-container-sees))",
    },
    Piece {
        stage: StageId::of("4.2"),
        file: "filesystems.rs",
        function: "make_read_only",
        todo: "bind-mount the path on itself, then remount it MS_RDONLY with its own flags \
               (chapter 4, Part 2: The host-wide parts of /proc, in The idea (book/src/step4-2-filesystems.md#the-idea))",
    },
    Piece {
        stage: StageId::of("4.2"),
        file: "filesystems.rs",
        function: "make_devices",
        todo: "mknod each of DEVICES in dev/, mode 0666 whatever the umask (in a user \
               namespace, bind_host_device instead), then make DEVICE_LINKS \
               (chapter 4, Part 2: The devices, in The code (book/src/step4-2-filesystems.md#the-code))",
    },
    Piece {
        stage: StageId::of("4.3"),
        file: "privileges.rs",
        function: "restrict",
        todo: "set the rlimits, drop the capabilities, switch the user, set no_new_privs: in \
               that order \
               (chapter 4, Part 3: The command's privileges (book/src/step4-3-privileges.md#part-3-the-commands-privileges))",
    },
    Piece {
        stage: StageId::of("4.3"),
        file: "privileges.rs",
        function: "drop_capabilities",
        todo: "drop from the bounding set every capability this kernel knows but the kept \
               ones, clear the ambient and inheritable sets, set effective and permitted to the \
               kept ones \
               (chapter 4, Part 3: The capabilities dropped, in The code (book/src/step4-3-privileges.md#the-code))",
    },
    Piece {
        stage: StageId::of("4.3"),
        file: "privileges.rs",
        function: "switch_user",
        todo: "setgroups([]), setgid, then setuid, in that order \
               (chapter 4, Part 3: Who the command runs as, in The code (book/src/step4-3-privileges.md#the-code))",
    },
    Piece {
        stage: StageId::of("4.4"),
        file: "init.rs",
        function: "close_inherited_files",
        todo: "close every descriptor above the runtime's socket, 3, with close_range(4, ~0U, \
               0) \
               (chapter 4, Part 4: Inherited files (book/src/step4-4-host.md#inherited-files))",
    },
    Piece {
        stage: StageId::of("4.4"),
        file: "init.rs",
        function: "own_session",
        todo: "setsid(): a session, and a process group, of the container's own \
               (chapter 4, Part 4: Signals and the terminal (book/src/step4-4-host.md#signals-and-the-terminal))",
    },
    Piece {
        stage: StageId::of("4.5"),
        file: "filesystems.rs",
        function: "protect_host_paths",
        todo: "make_read_only each of READ_ONLY that exists; hide each of MASKED that exists, \
               under a read-only tmpfs for a directory, under /dev/null bound on it and made \
               read-only for a file \
               (chapter 4, Part 4: The host's paths (book/src/step4-4-host.md#the-hosts-paths))",
    },
    Piece {
        stage: StageId::of("4.5"),
        file: "filesystems.rs",
        function: "enter_a_layer_over",
        todo: "open the rootfs O_PATH, mount a tmpfs on it, make upper, work and root in it, \
               mount overlay on root with the rootfs as lowerdir (/proc/self/fd/N), chdir into \
               root \
               (chapter 4, Part 4: A throwaway layer (book/src/step4-4-host.md#a-throwaway-layer))",
    },
    Piece {
        stage: StageId::of("4.6"),
        file: "seccomp.rs",
        function: "docker_profile",
        todo: "the filter: kill a call of another architecture, check ioctl, clone, \
               personality and socket with their checks, answer clone3 ENOSYS, then \
               allowed_ranges \
               (chapter 4, System calls (book/src/step4-4-syscalls.md#system-calls))",
    },
    Piece {
        stage: StageId::of("4.6"),
        file: "seccomp.rs",
        function: "allowed_ranges",
        todo: "the calls of allowed.rs as sorted ranges of numbers, two jumps each, then the \
               verdicts EPERM and allow \
               (chapter 4, System calls (book/src/step4-4-syscalls.md#system-calls))",
    },
    Piece {
        stage: StageId::of("4.7"),
        file: "stdio.rs",
        function: "hand_over",
        todo: "dup2 the container's three streams onto 0, 1 and 2, and its end of the control \
               socket onto 3, kept open across exec \
               (chapter 4, Part 5: Streams and a terminal of its own (book/src/step4-5-stdio.md#part-5-streams-and-a-terminal-of-its-own))",
    },
    Piece {
        stage: StageId::of("4.7"),
        file: "stdio.rs",
        function: "make_console",
        todo: "if some streams are on the caller's terminal: open a new pseudo-terminal of the \
               container's devpts, make its other end our controlling terminal (TIOCSCTTY), \
               send its master to the runtime (send_master), and dup2 the other end onto \
               those streams \
               (chapter 4, Part 5: make_console, in The code (book/src/step4-5-stdio.md#the-code))",
    },
    Piece {
        stage: StageId::of("5.1"),
        file: "cgroup.rs",
        function: "create_from",
        todo: "in each tree that trees::find gives, make byoc-<our pid> beneath parent_dir, \
               note it in the Cgroup, and write its limit_files \
               (chapter 5, Move 1: make (book/src/step5-1-cgroup.md#move-1-make))",
    },
    Piece {
        stage: StageId::of("5.1"),
        file: "cgroup.rs",
        function: "limit_files",
        todo: "list the files that set the limits, in order: memory.max, memory.swap.max, \
               memory.oom.group, pids.max, cpu.max \
               (chapter 5, Move 2: limit (book/src/step5-1-cgroup.md#move-2-limit))",
    },
    Piece {
        stage: StageId::of("5.2"),
        file: "cgroup.rs",
        function: "join",
        todo: "write \"0\" into cgroup.procs of each directory \
               (chapter 5, Move 3: join (book/src/step5-1-cgroup.md#move-3-join))",
    },
    Piece {
        stage: StageId::of("5.3"),
        file: "cgroup.rs",
        function: "oom_report",
        todo: "read the memory controller's events, and say whom the OOM killer killed \
               (chapter 5, Move 4: report (book/src/step5-1-cgroup.md#move-4-report))",
    },
    Piece {
        stage: StageId::of("5.3"),
        file: "cgroup.rs",
        function: "remove",
        todo: "rmdir each directory, then byoc if it is empty \
               (chapter 5, Move 5: remove (book/src/step5-1-cgroup.md#move-5-remove))",
    },
];

/// A plausible wrong solution of a stage: the reference with one edit, and what the stage's
/// failure must say to point at it.
pub struct Mistake {
    pub stage: StageId,
    pub what: &'static str,
    pub file: &'static str,
    pub function: &'static str,
    /// The edit, in `function`'s body: `from` becomes `to`.
    pub from: &'static str,
    pub to: &'static str,
    /// What the check's message must say.
    pub says: &'static str,
}

/// The runtime that never waits for its container (steps 1 to 3's `parent`): it returns 0 at
/// once, and leaves the container running.
/// The runtime that never waits for its container (steps 1 to 3's `parent`, no piece): it
/// returns 0 at once, and leaves the container running. `stage`, the first of its step,
/// catches it.
const fn never_waits(stage: &str) -> Mistake {
    Mistake {
        stage: StageId::of(stage),
        what: "the runtime never waits for its container, and returns 0 at once",
        file: "main.rs",
        function: "parent",
        from: "let status = narrate!(waitpid(child, None)).wrap_err(\"cannot wait for the \
               container\")?;\n    Ok(ExitCode::from(exit_code(status)))",
        to: "let _ = child;\n    Ok(ExitCode::SUCCESS)",
        says: "did not wait",
    }
}

impl Mistake {
    /// Whether only a check run as root can see this mistake: without root, the net maps one
    /// ID, and the part of the check that would catch it (`--user`, `--userns-remap`, the
    /// devices made by mknod) does not run.
    pub fn needs_root(&self) -> bool {
        SEEN_ONLY_AS_ROOT
            .iter()
            .any(|(stage, what)| self.stage == StageId::of(stage) && self.what == *what)
    }

    /// Whether it is a mistake on this machine: "on v1" ones are none on a v2 machine, whose
    /// one tree holds every controller.
    pub fn applies_here(&self) -> bool {
        !self.what.starts_with("on v1") || !std::path::Path::new(V2).exists()
    }
}

/// A file that only a cgroup v2 machine, one tree at /sys/fs/cgroup, has.
const V2: &str = "/sys/fs/cgroup/cgroup.controllers";

/// The mistakes that only root sees, by stage and `what`. A list apart, not a field: each
/// entry of MISTAKES stays as it is.
pub const SEEN_ONLY_AS_ROOT: &[(&str, &str)] = &[
    ("2.4", "as root, --userns-remap maps one user ID, not 65536"),
    ("4.2", "the devices made with the caller's umask: 0644, not 0666"),
    ("4.3", "the user switched before the capabilities are dropped"),
    ("4.3", "setgroups left out: the caller's supplementary groups kept"),
    ("4.3", "setuid before setgid, which it then forbids"),
    ("4.3", "setgid left out: the command keeps root's group"),
];

pub const MISTAKES: &[Mistake] = &[
    // Not clone without SIGCHLD, the book's first mistake: waitpid(2) then finds no child,
    // unless the child has ended already, for a child that has exec'd ends with SIGCHLD
    // whatever clone said (exit_notify in the kernel): a race, that no check can catch every
    // time (6 of 20 runs found the child here).
    Mistake {
        stage: StageId::of("1.1"),
        what: "`run` handed on to the child among the command's arguments",
        file: "main.rs",
        function: "start_child",
        from: ".chain(std::env::args().skip(2))",
        to: ".chain(std::env::args().skip(1))",
        says: "skip(2)",
    },
    Mistake {
        stage: StageId::of("1.1"),
        what: "`child` left out of the new process's command line",
        file: "main.rs",
        function: "start_child",
        from: "[\"/proc/self/exe\".to_string(), \"child\".to_string()]",
        to: "[\"/proc/self/exe\".to_string()]",
        says: "`child` first",
    },
    // The next two are in functions that are no piece (the runtime's side, which the
    // skeleton gives): stage 1.1's check, whose status the runtime returns, catches them.
    Mistake {
        stage: StageId::of("1.1"),
        what: "death by a signal reported as 1, not 128+N",
        file: "main.rs",
        function: "exit_code",
        from: "WaitStatus::Signaled(_, signal, _) => 128 + signal as u8,",
        to: "WaitStatus::Signaled(..) => 1,",
        says: "128 + N",
    },
    never_waits("1.1"),
    Mistake {
        stage: StageId::of("1.2"),
        what: "the child starts the command and waits, instead of becoming it",
        file: "main.rs",
        function: "child",
        from: ".exec();",
        to: ".status().err().unwrap_or_else(|| std::process::exit(0));",
        says: "become the command",
    },
    Mistake {
        stage: StageId::of("1.2"),
        what: "127 and 126 swapped",
        file: "main.rs",
        function: "child",
        from: "io::ErrorKind::NotFound => 127,\n        _ => 126,",
        to: "io::ErrorKind::NotFound => 126,\n        _ => 127,",
        says: "wrong way round",
    },
    Mistake {
        stage: StageId::of("1.2"),
        what: "exec's error returned to main, which exits 1",
        file: "main.rs",
        function: "child",
        from: "eprintln!(\"Error: {report:?}\");\n    Ok(ExitCode::from(status))",
        to: "let _ = status;\n    Err(report)",
        says: "became exit status 1",
    },
    Mistake {
        stage: StageId::of("1.2"),
        what: "the command's arguments left out",
        file: "main.rs",
        function: "child",
        from: ".args(&command[1..])",
        to: "",
        says: "without its arguments",
    },
    Mistake {
        stage: StageId::of("1.2"),
        what: "the command's name passed as its first argument too",
        file: "main.rs",
        function: "child",
        from: ".args(&command[1..])",
        to: ".args(command)",
        says: "its own name",
    },
    Mistake {
        stage: StageId::of("2.1"),
        what: "CLONE_NEWUTS left out",
        file: "main.rs",
        function: "namespaces",
        from: "CloneFlags::CLONE_NEWUTS\n        | ",
        to: "",
        says: "renamed the host",
    },
    Mistake {
        stage: StageId::of("2.1"),
        what: "CLONE_NEWPID left out",
        file: "main.rs",
        function: "namespaces",
        from: "\n        | CloneFlags::CLONE_NEWPID",
        to: "",
        says: "CLONE_NEWPID",
    },
    Mistake {
        stage: StageId::of("2.1"),
        what: "CLONE_NEWNS left out",
        file: "main.rs",
        function: "namespaces",
        from: "\n        | CloneFlags::CLONE_NEWNS",
        to: "",
        says: "CLONE_NEWNS",
    },
    Mistake {
        stage: StageId::of("2.1"),
        what: "CLONE_NEWIPC left out",
        file: "main.rs",
        function: "namespaces",
        from: "\n        | CloneFlags::CLONE_NEWIPC",
        to: "",
        says: "CLONE_NEWIPC",
    },
    Mistake {
        stage: StageId::of("2.1"),
        what: "CLONE_NEWNET left out",
        file: "main.rs",
        function: "namespaces",
        from: "\n        | CloneFlags::CLONE_NEWNET",
        to: "",
        says: "CLONE_NEWNET",
    },
    never_waits("2.1"),
    Mistake {
        stage: StageId::of("2.2"),
        what: "the mounts left shared",
        file: "main.rs",
        function: "make_mounts_private",
        from: "MsFlags::MS_REC | MsFlags::MS_PRIVATE",
        to: "MsFlags::MS_REC | MsFlags::MS_SHARED",
        says: "not made private",
    },
    Mistake {
        stage: StageId::of("2.2"),
        what: "MS_PRIVATE without MS_REC: / private, the mounts beneath it shared",
        file: "main.rs",
        function: "make_mounts_private",
        from: "MsFlags::MS_REC | MsFlags::MS_PRIVATE",
        to: "MsFlags::MS_PRIVATE",
        says: "not the mounts beneath it",
    },
    Mistake {
        stage: StageId::of("2.2"),
        what: "MS_REC without MS_PRIVATE: no change of propagation, a mount refused",
        file: "main.rs",
        function: "make_mounts_private",
        from: "MsFlags::MS_REC | MsFlags::MS_PRIVATE",
        to: "MsFlags::MS_REC",
        says: "a change of propagation only",
    },
    Mistake {
        stage: StageId::of("2.2"),
        what: "the mounts never made private",
        file: "main.rs",
        function: "make_mounts_private",
        from: "narrate!(mount(None::<&str>, \"/\", None::<&str>, flags, None::<&str>))\n        \
               .wrap_err(\"cannot make the container's mounts private\")",
        to: "Ok(drop(flags))",
        says: "not made private",
    },
    Mistake {
        stage: StageId::of("2.2"),
        what: "the mounts made private on the runtime's side of clone, the host's",
        file: "main.rs",
        function: "start_child",
        from: "    only_one_thread()?;",
        to: "    make_mounts_private()?;\n    only_one_thread()?;",
        says: "host's side of clone",
    },
    Mistake {
        stage: StageId::of("2.3"),
        what: "IFF_UP left out",
        file: "main.rs",
        function: "bring_up_loopback",
        from: "libc::IFF_UP as libc::c_short",
        to: "0",
        says: "IFF_UP",
    },
    Mistake {
        stage: StageId::of("2.3"),
        what: "lo's flags read (SIOCGIFFLAGS), not set",
        file: "main.rs",
        function: "bring_up_loopback",
        from: "libc::SIOCSIFFLAGS as libc::Ioctl",
        to: "libc::SIOCGIFFLAGS as libc::Ioctl",
        says: "SIOCSIFFLAGS",
    },
    Mistake {
        stage: StageId::of("2.3"),
        what: "the hostname set to the default, whatever --hostname says",
        file: "main.rs",
        function: "set_hostname",
        from: "sethostname(&container.hostname)",
        to: "sethostname(\"container\")",
        says: "not the one --hostname gives",
    },
    Mistake {
        stage: StageId::of("2.3"),
        what: "the hostname never set",
        file: "main.rs",
        function: "set_hostname",
        from: "narrate!(sethostname(&container.hostname))",
        to: "Ok::<(), Errno>(())",
        says: "still the host's",
    },
    Mistake {
        stage: StageId::of("2.4"),
        what: "setgroups not denied first",
        file: "rootless.rs",
        function: "write_id_maps",
        from: "(\"setgroups\", \"deny\".to_string()),",
        to: "",
        says: "setgroups",
    },
    Mistake {
        stage: StageId::of("2.4"),
        what: "gid_map left out",
        file: "rootless.rs",
        function: "write_id_maps",
        from: "(\"gid_map\", format!(\"0 {} 1\", Gid::effective())),",
        to: "",
        says: "gid_map is not written",
    },
    Mistake {
        stage: StageId::of("2.4"),
        what: "uid_map's fields swapped: \"UID 0 1\"",
        file: "rootless.rs",
        function: "write_id_maps",
        from: "(\"uid_map\", format!(\"0 {} 1\", Uid::effective())),",
        to: "(\"uid_map\", format!(\"{} 0 1\", Uid::effective())),",
        says: "the ID inside, the ID outside",
    },
    Mistake {
        stage: StageId::of("2.4"),
        what: "as root, --userns-remap maps one user ID, not 65536",
        file: "rootless.rs",
        function: "write_id_maps",
        from: "(\"uid_map\", format!(\"0 {first} {REMAP_COUNT}\")),",
        to: "(\"uid_map\", format!(\"0 {first} 1\")),",
        says: "not one",
    },
    Mistake {
        stage: StageId::of("3.1"),
        what: "no check for bin/sh",
        file: "main.rs",
        function: "check_rootfs",
        from: "rootfs.join(\"bin/sh\").symlink_metadata().is_err()",
        to: "false",
        says: "bin/sh",
    },
    Mistake {
        stage: StageId::of("3.1"),
        what: "bin/sh checked with exists(), which follows an absolute link on the host",
        file: "main.rs",
        function: "check_rootfs",
        from: "rootfs.join(\"bin/sh\").symlink_metadata().is_err()",
        to: "!rootfs.join(\"bin/sh\").exists()",
        says: "absolute link",
    },
    Mistake {
        stage: StageId::of("3.1"),
        what: "the problem printed, not returned: the run goes on",
        file: "main.rs",
        function: "check_rootfs",
        from: "Err(eyre!(\"no root filesystem at {rootfs:?}: {problem}\"))\n        \
               .suggestion(\"run `just rootfs` to build one with busybox, or pass --rootfs DIR\")",
        to: "eprintln!(\"no root filesystem at {rootfs:?}: {problem}\");\n    Ok(())",
        says: "returning its error",
    },
    Mistake {
        stage: StageId::of("3.1"),
        what: "the refusal does not name the --rootfs",
        file: "main.rs",
        function: "check_rootfs",
        from: "eyre!(\"no root filesystem at {rootfs:?}: {problem}\")",
        to: "eyre!(\"no root filesystem: {problem}\")",
        says: "must name the --rootfs",
    },
    never_waits("3.1"),
    Mistake {
        stage: StageId::of("3.2"),
        what: "the bind mount left out",
        file: "main.rs",
        function: "enter_rootfs",
        from: "narrate!(mount(Some(rootfs.as_path()), rootfs, None::<&str>, flags, None::<&str>))",
        to: "Ok::<(), Errno>(())",
        says: "bind-mount",
    },
    Mistake {
        stage: StageId::of("3.2"),
        what: "MS_BIND left out of the bind mount's flags",
        file: "main.rs",
        function: "enter_rootfs",
        from: "MsFlags::MS_BIND | MsFlags::MS_REC",
        to: "MsFlags::MS_REC",
        says: "MS_BIND | MS_REC",
    },
    Mistake {
        stage: StageId::of("3.2"),
        what: "no chdir(\"/\") after pivot_root",
        file: "main.rs",
        function: "enter_rootfs",
        from: "narrate!(chdir(\"/\")).wrap_err(\"cannot chdir to the new root\")",
        to: "Ok(())",
        says: "chdir(\"/\")",
    },
    Mistake {
        stage: StageId::of("3.2"),
        what: "the old root put on the new one: pivot_root(rootfs, rootfs)",
        file: "main.rs",
        function: "enter_rootfs",
        from: "narrate!(pivot_root(rootfs, &old_root))",
        to: "narrate!(pivot_root(rootfs, rootfs))",
        says: "put_old",
    },
    Mistake {
        stage: StageId::of("4.1"),
        what: "SIGCHLD not blocked",
        file: "init.rs",
        function: "block_signals",
        from: "signals.add(Signal::SIGCHLD);",
        to: "",
        says: "SIGCHLD",
    },
    Mistake {
        stage: StageId::of("4.1"),
        what: "no PR_SET_PDEATHSIG: the container outlives a runtime killed by SIGKILL",
        file: "init.rs",
        function: "die_with_runtime",
        from: "narrate!(prctl::set_pdeathsig(Signal::SIGKILL)).wrap_err(\"cannot set PR_SET_PDEATHSIG\")?;",
        to: "",
        says: "PR_SET_PDEATHSIG",
    },
    Mistake {
        stage: StageId::of("4.1"),
        what: "SIGTERM asked for at the runtime's death, which init blocks",
        file: "init.rs",
        function: "die_with_runtime",
        from: "prctl::set_pdeathsig(Signal::SIGKILL)",
        to: "prctl::set_pdeathsig(Signal::SIGTERM)",
        says: "a signal that init",
    },
    Mistake {
        stage: StageId::of("4.1"),
        what: "the signals read are never passed on to the command",
        file: "init.rs",
        function: "supervise",
        from: "if signal != Signal::SIGCHLD && !from_the_terminal {",
        to: "if signal != Signal::SIGCHLD && !from_the_terminal && false {",
        says: "pass each on",
    },
    Mistake {
        stage: StageId::of("4.1"),
        what: "only SIGCHLD blocked, not the signals to pass on",
        file: "init.rs",
        function: "block_signals",
        from: "let mut signals: SigSet = FORWARDED.into_iter().collect();",
        to: "let mut signals = SigSet::empty();",
        says: "block the FORWARDED",
    },
    Mistake {
        stage: StageId::of("4.1"),
        what: "init waits for the command alone: orphans stay zombies",
        file: "init.rs",
        function: "supervise",
        from: "let status = waitpid(any, flags);",
        to: "let status = waitpid(any.or(Some(pid)), flags);",
        says: "orphans too",
    },
    Mistake {
        stage: StageId::of("4.1"),
        what: "the command's process exits 0 whatever become_command returned",
        file: "init.rs",
        function: "start_command",
        from: "std::process::exit(status.into())",
        to: "std::process::exit(0)",
        says: "become_command returns",
    },
    Mistake {
        stage: StageId::of("4.2"),
        what: "protect_host_paths never called: the host-wide parts of /proc left writable",
        file: "filesystems.rs",
        function: "mount_filesystems",
        from: "protect_host_paths()",
        to: "Ok(())",
        says: "must end with protect_host_paths",
    },
    Mistake {
        stage: StageId::of("4.2"),
        what: "umount2(\".\", MNT_DETACH) left out: the host's root stays beneath /..",
        file: "filesystems.rs",
        function: "drop_old_root",
        from: "narrate!(umount2(\".\", MntFlags::MNT_DETACH)).wrap_err(\"cannot unmount the old root\")?;",
        to: "",
        says: "umount2(\".\", MNT_DETACH)",
    },
    Mistake {
        stage: StageId::of("4.2"),
        what: "/sys mounted read-write",
        file: "filesystems.rs",
        function: "mount_filesystems",
        from: "mount_fs(\"sysfs\", \"sys\", MsFlags::MS_RDONLY | nosuid | nodev | noexec, \"\")?;",
        to: "mount_fs(\"sysfs\", \"sys\", nosuid | nodev | noexec, \"\")?;",
        says: "mount sysfs with MS_RDONLY",
    },
    Mistake {
        stage: StageId::of("4.2"),
        what: "make_read_only binds without the read-only remount",
        file: "filesystems.rs",
        function: "make_read_only",
        from: "    remount_read_only(path)\n",
        to: "    Ok(())\n",
        says: "remounted MS_RDONLY",
    },
    Mistake {
        stage: StageId::of("4.2"),
        what: "the devices made with the caller's umask: 0644, not 0666",
        file: "filesystems.rs",
        function: "make_devices",
        from: "let umask_before = umask(Mode::empty());",
        to: "let umask_before = Mode::from_bits_truncate(0o022);",
        says: "umask",
    },
    Mistake {
        stage: StageId::of("4.2"),
        what: "/tmp's flags and-ed, not or-ed: mounted without nosuid and nodev",
        file: "filesystems.rs",
        function: "mount_filesystems",
        from: "mount_fs(\"tmpfs\", \"tmp\", nosuid | nodev,",
        to: "mount_fs(\"tmpfs\", \"tmp\", nosuid & nodev,",
        says: "or-ed with |, not &",
    },
    Mistake {
        stage: StageId::of("4.3"),
        what: "the user switched before the capabilities are dropped",
        file: "privileges.rs",
        function: "restrict",
        from: "    drop_capabilities()?;\n    switch_user(user)?;",
        to: "    switch_user(user)?;\n    drop_capabilities()?;",
        says: "before the user changes",
    },
    Mistake {
        stage: StageId::of("4.3"),
        what: "setgroups left out: the caller's supplementary groups kept",
        file: "privileges.rs",
        function: "switch_user",
        from: "narrate!(setgroups(no_groups)).wrap_err(\"cannot clear the supplementary groups\")?;",
        to: "let _ = no_groups;",
        says: "setgroups([])",
    },
    Mistake {
        stage: StageId::of("4.3"),
        what: "no_new_privs never set",
        file: "privileges.rs",
        function: "restrict",
        from: "narrate!(prctl::set_no_new_privs()).wrap_err(\"cannot set no_new_privs\")",
        to: "Ok(())",
        says: "no_new_privs",
    },
    Mistake {
        stage: StageId::of("4.3"),
        what: "the capabilities dropped from the effective set, not the bounding set",
        file: "privileges.rs",
        function: "drop_capabilities",
        from: "caps::drop(None, CapSet::Bounding, capability)",
        to: "caps::drop(None, CapSet::Effective, capability)",
        says: "bounding set",
    },
    Mistake {
        stage: StageId::of("4.3"),
        what: "the default rlimits never set",
        file: "privileges.rs",
        function: "restrict",
        from: "    set_resource_limits(ulimits)?;\n",
        to: "    let _ = ulimits;\n",
        says: "nofile=1024:4096",
    },
    Mistake {
        stage: StageId::of("4.3"),
        what: "setuid before setgid, which it then forbids",
        file: "privileges.rs",
        function: "switch_user",
        from: "    match narrate!(setgid(user.gid)) {",
        to: "    narrate!(setuid(user.uid)).wrap_err(\"cannot change user\")?;\n    match narrate!(setgid(user.gid)) {",
        says: "setgid, then setuid",
    },
    Mistake {
        stage: StageId::of("4.3"),
        what: "setgid left out: the command keeps root's group",
        file: "privileges.rs",
        function: "switch_user",
        from: "match narrate!(setgid(user.gid)) {",
        to: "match Ok::<(), Errno>(()) {",
        says: "setgid(2) to it",
    },
    Mistake {
        stage: StageId::of("4.4"),
        what: "no session of its own",
        file: "init.rs",
        function: "own_session",
        from: "narrate!(setsid())",
        to: "nix::unistd::getsid(None)",
        says: "setsid() first",
    },
    Mistake {
        stage: StageId::of("4.4"),
        what: "a process group of its own, setpgid, but the caller's session",
        file: "init.rs",
        function: "own_session",
        from: "narrate!(setsid())",
        to: "nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0)).map(|()| Pid::from_raw(0))",
        says: "as setpgid makes",
    },
    Mistake {
        stage: StageId::of("4.4"),
        what: "the inherited descriptors never closed",
        file: "init.rs",
        function: "close_inherited_files",
        from: "let closed = Errno::result(unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) });",
        to: "let closed = Ok::<libc::c_long, Errno>(0);",
        says: "reached the command",
    },
    Mistake {
        stage: StageId::of("4.4"),
        what: "close_range from 5: descriptor 4 kept",
        file: "init.rs",
        function: "close_inherited_files",
        from: "CONTROL as libc::c_uint + 1,",
        to: "CONTROL as libc::c_uint + 2,",
        says: "descriptor 4, the first above",
    },
    Mistake {
        stage: StageId::of("4.4"),
        what: "close_range marks the descriptors close-on-exec: init keeps them",
        file: "init.rs",
        function: "close_inherited_files",
        from: "libc::c_uint::MAX, 0);",
        to: "libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC);",
        says: "close-on-exec",
    },
    Mistake {
        stage: StageId::of("4.5"),
        what: "the masked files left out",
        file: "filesystems.rs",
        function: "protect_host_paths",
        from: "} else if path.exists() {",
        to: "} else if false {",
        says: "MASKED",
    },
    Mistake {
        stage: StageId::of("4.5"),
        what: "the masked directories under a writable tmpfs",
        file: "filesystems.rs",
        function: "protect_host_paths",
        from: "let flags =\n                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID",
        to: "let flags =\n                MsFlags::MS_NOSUID",
        says: "read-only tmpfs, MS_RDONLY",
    },
    Mistake {
        stage: StageId::of("4.5"),
        what: "READ_ONLY left writable",
        file: "filesystems.rs",
        function: "protect_host_paths",
        from: "        if path.exists() {\n            make_read_only",
        to: "        if false {\n            make_read_only",
        says: "READ_ONLY",
    },
    Mistake {
        stage: StageId::of("4.5"),
        what: "overlay's lower layer named by its path, which the tmpfs now covers",
        file: "filesystems.rs",
        function: "enter_a_layer_over",
        from: "format!(\"lowerdir=/proc/self/fd/{},upperdir=upper,workdir=work\", lower.as_raw_fd())",
        to: "format!(\"lowerdir={},upperdir=upper,workdir=work\", rootfs.display())",
        says: "/proc/self/fd/N",
    },
    Mistake {
        stage: StageId::of("4.5"),
        what: "the layer's tmpfs without a size: --tmpfs-size ignored",
        file: "filesystems.rs",
        function: "enter_a_layer_over",
        from: "let options = format!(\"mode=755,{}\", tmpfs_size(size));",
        to: "let options = format!(\"mode=755,nr_inodes={}\", size / 4096);",
        says: "tmpfs_size",
    },
    Mistake {
        stage: StageId::of("4.5"),
        what: "the masked directories' tmpfs read-only, but with set-user-ID, devices and exec",
        file: "filesystems.rs",
        function: "protect_host_paths",
        from: "MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;",
        to: "MsFlags::MS_RDONLY;",
        says: "MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC",
    },
    Mistake {
        stage: StageId::of("4.5"),
        what: "the layer mounted without nodev: a device file in the rootfs opens",
        file: "filesystems.rs",
        function: "enter_a_layer_over",
        from: "(Some(\"overlay\"), \"root\", MsFlags::MS_NODEV)",
        to: "(Some(\"overlay\"), \"root\", MsFlags::empty())",
        says: "overlay MS_NODEV",
    },
    Mistake {
        stage: StageId::of("4.6"),
        what: "clone3 refused with EPERM, as the other calls",
        file: "seccomp.rs",
        function: "docker_profile",
        from: "libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32",
        to: "libc::SECCOMP_RET_ERRNO | libc::EPERM as u32",
        says: "ENOSYS",
    },
    Mistake {
        stage: StageId::of("4.6"),
        what: "no architecture check: a call of another ABI goes through",
        file: "seccomp.rs",
        function: "docker_profile",
        from: "        load(offset_of!(seccomp_data, arch)),\n        jump(libc::BPF_JEQ, AUDIT_ARCH, 1, 0),\n        verdict(libc::SECCOMP_RET_KILL_PROCESS), // another ABI: its numbers mean other calls\n",
        to: "",
        says: "seccomp_data.arch",
    },
    Mistake {
        stage: StageId::of("4.6"),
        what: "ioctl not among the checked calls: every ioctl refused",
        file: "seccomp.rs",
        function: "docker_profile",
        from: "(libc::SYS_ioctl, not_a_typing_request()),",
        to: "",
        says: "ioctl that Docker allows",
    },
    Mistake {
        stage: StageId::of("4.6"),
        what: "the calls outside the ranges allowed",
        file: "seccomp.rs",
        function: "allowed_ranges",
        from: "program.push(verdict(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32)); // any other call",
        to: "program.push(verdict(libc::SECCOMP_RET_ALLOW)); // any other call",
        says: "refuses every call but Docker's",
    },
    Mistake {
        stage: StageId::of("4.6"),
        what: "each range's first call refused: BPF_JGT for BPF_JGE",
        file: "seccomp.rs",
        function: "allowed_ranges",
        from: "program.push(jump(libc::BPF_JGE, *first, after + 1, after));",
        to: "program.push(jump(libc::BPF_JGT, *first, after + 1, after));",
        says: "first and last calls",
    },
    Mistake {
        stage: StageId::of("4.7"),
        what: "stdout not handed over: the container writes to the caller's own file",
        file: "stdio.rs",
        function: "hand_over",
        from: "narrate!(dup2_stdout(&self.streams[1])).wrap_err(\"cannot hand over stdout\")?;",
        to: "",
        says: "stdout is the caller's own",
    },
    Mistake {
        stage: StageId::of("4.7"),
        what: "no terminal of its own",
        file: "stdio.rs",
        function: "make_console",
        from: "if streams.is_empty() {",
        to: "if true {",
        says: "terminal of its own",
    },
    Mistake {
        stage: StageId::of("4.7"),
        what: "stdin not handed over: the container reads the caller's own file",
        file: "stdio.rs",
        function: "hand_over",
        from: "narrate!(dup2_stdin(&self.streams[0])).wrap_err(\"cannot hand over stdin\")?;",
        to: "",
        says: "stdin is the caller's own",
    },
    Mistake {
        stage: StageId::of("4.7"),
        what: "stderr not handed over: the container writes to the caller's own file",
        file: "stdio.rs",
        function: "hand_over",
        from: "narrate!(dup2_stderr(&self.streams[2])).wrap_err(\"cannot hand over stderr\")?;",
        to: "",
        says: "stderr is the caller's own",
    },
    Mistake {
        stage: StageId::of("4.7"),
        what: "the terminal not made init's controlling terminal (no TIOCSCTTY)",
        file: "stdio.rs",
        function: "make_console",
        from: "Errno::result(unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSCTTY, 0) });",
        to: "Ok::<libc::c_int, Errno>(0);",
        says: "TIOCSCTTY",
    },
    Mistake {
        stage: StageId::of("4.7"),
        what: "stdout's arm left out: on a terminal, stdout gets stderr's dup2",
        file: "stdio.rs",
        function: "make_console",
        from: "            1 => dup2_stdout(&terminal),\n",
        to: "",
        says: "each its own dup2",
    },
    Mistake {
        stage: StageId::of("5.1"),
        what: "pids.max not written",
        file: "cgroup.rs",
        function: "limit_files",
        from: "files.push(file(\"pids.max\", pids.to_string()));",
        to: "let _ = pids;",
        says: "pids.max",
    },
    Mistake {
        stage: StageId::of("5.1"),
        what: "the memory limit never written",
        file: "cgroup.rs",
        function: "limit_files",
        from: "if let (Some(bytes), true) = (limits.memory, tree.holds(\"memory\")) {",
        to: "if let (Some(bytes), true) = (limits.memory, false && tree.holds(\"memory\")) {",
        says: "the memory limit is not written",
    },
    Mistake {
        stage: StageId::of("5.1"),
        what: "the CPU period in milliseconds, not microseconds",
        file: "cgroup.rs",
        function: "limit_files",
        from: "let period = 100_000;",
        to: "let period = 100;",
        says: "microseconds",
    },
    Mistake {
        stage: StageId::of("5.1"),
        what: "on v1, a cgroup made in the first tree only",
        file: "cgroup.rs",
        function: "create_from",
        from: "for tree in &trees {",
        to: "for tree in trees.iter().take(1) {",
        says: "in each tree",
    },
    Mistake {
        stage: StageId::of("5.1"),
        what: "the CPU quota a sum, not a product: a whole period, a whole CPU",
        file: "cgroup.rs",
        function: "limit_files",
        from: "let quota = (cpus * period as f64).round() as u64;",
        to: "let quota = (cpus + period as f64).round() as u64;",
        says: "the quota is wrong",
    },
    Mistake {
        stage: StageId::of("5.2"),
        what: "the child never joins the cgroup",
        file: "cgroup.rs",
        function: "join",
        from: "write(&dir.join(\"cgroup.procs\"), \"0\").wrap_err_with(context)?;",
        to: "let _ = (dir, context);",
        says: "join",
    },
    Mistake {
        stage: StageId::of("5.2"),
        what: "on v1, only the first cgroup directory joined",
        file: "cgroup.rs",
        function: "join",
        from: "for dir in dirs {",
        to: "for dir in dirs.iter().take(1) {",
        says: "every directory",
    },
    Mistake {
        stage: StageId::of("5.2"),
        what: "only the memory controller's directory joined",
        file: "cgroup.rs",
        function: "join",
        from: "for dir in dirs {",
        to: "for dir in dirs.iter().filter(|dir| dir.to_string_lossy().contains(\"memory\")) {",
        says: "every directory",
    },
    Mistake {
        stage: StageId::of("5.2"),
        what: "\"0\" written to the directory, not its cgroup.procs",
        file: "cgroup.rs",
        function: "join",
        from: "write(&dir.join(\"cgroup.procs\"), \"0\")",
        to: "write(dir, \"0\")",
        says: "cgroup.procs",
    },
    Mistake {
        stage: StageId::of("5.3"),
        what: "the cgroup never removed",
        file: "cgroup.rs",
        function: "remove",
        from: "if let Err(e) = robustness::rmdir(&dir) {",
        to: "if let Err(e) = Ok::<(), color_eyre::Report>(()) {",
        says: "left the cgroup",
    },
    Mistake {
        stage: StageId::of("5.3"),
        what: "on v1, only the first cgroup directory removed",
        file: "cgroup.rs",
        function: "remove",
        from: "for dir in std::mem::take(&mut self.dirs) {",
        to: "for dir in std::mem::take(&mut self.dirs).into_iter().take(1) {",
        says: "left the cgroup",
    },
    Mistake {
        stage: StageId::of("5.3"),
        what: "no OOM report",
        file: "cgroup.rs",
        function: "oom_report",
        from: "let (dir, limit) = self.memory.as_ref()?;",
        to: "let (dir, limit) = self.memory.as_ref().filter(|_| false)?;",
        says: "oom_kill",
    },
    Mistake {
        stage: StageId::of("5.3"),
        what: "an OOM report whether or not the OOM killer killed",
        file: "cgroup.rs",
        function: "oom_report",
        from: "let victims = robustness::victims(&events)?;",
        to: "let victims = robustness::victims(&events).unwrap_or_default();",
        says: "did not happen",
    },
    // The runtime's side (no piece), two calls swapped: the counters go with the cgroup.
    Mistake {
        stage: StageId::of("5.3"),
        what: "the cgroup removed before the report is read",
        file: "main.rs",
        function: "parent",
        from: "    if let Some(report) = cgroup.oom_report() {\n        \
               eprintln!(\"{report}\");\n    }\n    cgroup.remove()?;",
        to: "    cgroup.remove()?;\n    if let Some(report) = cgroup.oom_report() {\n        \
             eprintln!(\"{report}\");\n    }",
        says: "before the cgroup is removed",
    },
];
