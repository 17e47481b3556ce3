//! The stages, and what each one checks. A check runs the program in the safety net, as a
//! learner would run it, and looks only at what a correct program must do (its output's
//! meaning, its exit status, what it did to the stand-in host), never at the reference's
//! wording. The same checks judge the reference steps in `just test` and a learner's in
//! `just check`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common;
use crate::workshop::exercises::PIECES;
use crate::workshop::{StageId, net};

/// How long one run may take before the net kills it.
const LIMIT: Duration = Duration::from_secs(10);

pub struct Stage {
    pub id: StageId,
    pub name: &'static str,
    /// Where the book explains it.
    pub read: &'static str,
    pub check: fn(&Path) -> Result<(), Failure>,
    /// What of it a learner without root can check.
    pub without_root: WithoutRoot,
}

/// What of a stage's check runs for a learner without root, whose safety net is a user
/// namespace of their own (book: Workshop, Without root).
pub enum WithoutRoot {
    /// All of it.
    All,
    /// All but a part that needs root, which the note names.
    AllBut(&'static str),
    /// None: it needs root, for the reason given.
    None(&'static str),
}

/// Whether the checks run without root: then the net is a user namespace of the learner's,
/// and a stage checks what `WithoutRoot` says.
pub fn rootless() -> bool {
    !nix::unistd::Uid::effective().is_root()
}

/// Why a check failed: what it ran, what it expected, what it saw, and what to look at.
#[derive(Debug)]
pub struct Failure {
    pub ran: String,
    pub expected: String,
    pub saw: String,
    pub hint: String,
}

/// The stages of step `step`.
pub fn of_step(step: u8) -> impl Iterator<Item = &'static Stage> {
    STAGES.iter().filter(move |stage| stage.id.step == step)
}

/// Every stage, in order: each one's entry is beside its check, below.
pub const STAGES: &[Stage] = &[
    START_A_CHILD,
    BECOME_THE_COMMAND,
    FIVE_NAMESPACES,
    PRIVATE_MOUNTS,
    HOSTNAME_AND_NETWORK,
    WITHOUT_ROOT,
    REFUSE_NO_ROOTFS,
    PIVOT_INTO_ROOTFS,
    INIT_IS_PID_1,
    FILESYSTEMS_OF_ITS_OWN,
    FEWER_PRIVILEGES,
    NOTHING_OF_THE_CALLERS,
    HOST_PATHS_AND_LAYER,
    SYSTEM_CALLS_REFUSED,
    STREAMS_OF_ITS_OWN,
    LIMITS_ENFORCED,
    JOINS_ITS_CGROUP,
    REPORT_AND_REMOVE,
];

/// One run of the program in the net, and how a learner would have typed it.
struct Ran {
    shown: String,
    outcome: net::Outcome,
}

impl Ran {
    fn output(&self) -> &str {
        &self.outcome.output
    }

    /// A failure of this run: `expected` did not happen; `hint` says what to look at.
    fn failure(&self, expected: &str, hint: &str) -> Failure {
        let mut saw = format!("{}[exit status: {}]", self.outcome.output, self.outcome.status);
        for harm in &self.outcome.harm {
            saw += &format!("\nand: {harm}");
        }
        Failure {
            ran: self.shown.clone(),
            expected: expected.to_string(),
            saw,
            hint: hint.to_string(),
        }
    }

    /// Ok if `ok`, else the failure.
    fn expect(&self, ok: bool, expected: &str, hint: &str) -> Result<(), Failure> {
        if ok { Ok(()) } else { Err(self.failure(expected, hint)) }
    }
}

/// Run `program ARGS…` in the net. Whatever the stage, it fails when the program stopped at a
/// `todo!()` (its message says what to write), or harmed the stand-in host.
fn run(program: &Path, args: &[&str]) -> Result<Ran, Failure> {
    let shown = format!("just yours {} {}", step_of(program), common::shell_words(args));
    run_shown(shown, program, args)
}

/// The step is the first digit of the program's name: step3, or a variant of it.
fn step_of(program: &Path) -> char {
    let name = program.file_name().unwrap_or_default().to_string_lossy();
    name.chars().find(char::is_ascii_digit).unwrap_or('?')
}

/// `run`, as a learner without root runs it. Checked by root: as user `nobody`, from a copy
/// that `nobody` may run (the learner's checkout may be private), in the net. Checked without
/// root: as the learner, outside the net, as the step then makes its own user namespace.
fn run_rootless(program: &Path, args: &[&str]) -> Result<Ran, Failure> {
    if rootless() {
        let shown = format!("just yours {} {}", step_of(program), common::shell_words(args));
        return checked(Ran { shown, outcome: net::run_as_caller(program, args, LIMIT) });
    }
    let checkout = common::RootlessCheckout::of(program, false);
    let exe = checkout.exe.to_string_lossy();
    let setpriv: Vec<&str> =
        common::AS_NOBODY.into_iter().chain([exe.as_ref()]).chain(args.iter().copied()).collect();
    let shown =
        format!("(as nobody) just yours {} {}", step_of(program), common::shell_words(args));
    run_shown(shown, Path::new("setpriv"), &setpriv)
}

/// `run`, with the command line that the failure shows.
fn run_shown(shown: String, program: &Path, args: &[&str]) -> Result<Ran, Failure> {
    checked(Ran { shown, outcome: net::run(program, args, LIMIT) })
}

/// Whatever the stage, a run fails when the program stopped at a `todo!()` (its message says
/// what to write), or harmed the stand-in host.
fn checked(ran: Ran) -> Result<Ran, Failure> {
    if let Some(at) = ran.output().find("not yet implemented: ") {
        let todo = &ran.output()[at + "not yet implemented: ".len()..];
        let stage = todo.split(':').next().unwrap_or_default();
        let id = stage.parse::<StageId>().ok();
        let pieces: Vec<&str> = PIECES
            .iter()
            .filter(|piece| Some(piece.stage) == id)
            .map(|piece| piece.function)
            .collect();
        let hint = format!(
            "write the todo!() in fn {}: its message, above, says what to do and where to read",
            pieces.join(", fn ")
        );
        return Err(
            ran.failure(&format!("stage {stage} written, with no todo!() left in it"), &hint)
        );
    }
    if let Some(harm) = ran.outcome.harm.first() {
        let hint = if harm.contains("did not end") {
            "the run did not end: does init notice that its children end? SIGCHLD must be among \
             the signals it blocks, and reads from its signalfd (chapter 4, Part 1)"
                .to_string()
        } else {
            harm.clone()
        };
        return Err(
            ran.failure("nothing changed on the host, and no process or cgroup left", &hint)
        );
    }
    Ok(ran)
}

/// The lines of `/proc/self/status`-like text that start with `name`.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| line.strip_prefix(name)).map(str::trim)
}

// ---------------------------------------------------------------- step 1

/// `run`, but with the harm left for the check to judge first, as it can say more precisely
/// what went wrong; it then hands the run to `checked`. A `todo!()` still fails at once.
fn run_judging_harm(program: &Path, args: &[&str]) -> Result<Ran, Failure> {
    let shown = format!("just yours {} {}", step_of(program), common::shell_words(args));
    let ran = Ran { shown, outcome: net::run(program, args, LIMIT) };
    match ran.output().contains("not yet implemented: ") {
        true => checked(ran),
        false => Ok(ran),
    }
}

/// Whether the run left processes behind: the command outlived the runtime.
fn left_processes(ran: &Ran) -> bool {
    ran.outcome.harm.iter().any(|harm| harm.contains("left processes"))
}

/// The runtime waits for its command, one that takes a second and ends with status 5, and
/// exits with that status: a runtime that returns at once, 0, is seen here.
fn waits_for_its_command(program: &Path, hint: fn(&Ran) -> &'static str) -> Result<(), Failure> {
    let ran = run_judging_harm(program, &["run", "sh", "-c", "sleep 1; exit 5"])?;
    ran.expect(
        ran.outcome.status == 5,
        "exit status 5, a second later: the command's",
        hint(&ran),
    )?;
    checked(ran).map(drop)
}

/// What to look at when the runtime did not end with its command's status.
fn waiting_hint(ran: &Ran) -> &'static str {
    if left_processes(ran) {
        "the runtime did not wait for its child: it must waitpid(2) for it, and only then exit, \
         with its status"
    } else {
        "the runtime must exit with its command's status: waitpid(2)'s, converted by exit_code"
    }
}

const START_A_CHILD: Stage = Stage {
    id: StageId::of("1.1"),
    name: "start a child that runs you again as `child`",
    read: "chapter 1, The diff: start_child (book/src/step1.md#the-diff)",
    check: start_a_child,
    without_root: WithoutRoot::All,
};

/// What to look at when the child did not run the command as it should.
fn start_hint(ran: &Ran) -> &'static str {
    if ran.output().contains("ECHILD") {
        "waitpid(2) found no child to wait for: clone's last argument is the signal the kernel \
         sends the parent when the child ends, and it must be SIGCHLD (chapter 1, The idea)"
    } else if ran.output().contains("cannot run \"run\"") {
        "the child took `run` for the command: `child` gets what followed `run`, \
         std::env::args().skip(2) (chapter 1, The diff: start_child)"
    } else if ran.outcome.status == 2 {
        // clap's status for a command line it refuses: the child got no `child` to parse.
        "the child refused its command line: it must exec /proc/self/exe child ARGS…, \
         `child` first (chapter 1, The diff: start_child)"
    } else {
        waiting_hint(ran)
    }
}

fn start_a_child(program: &Path) -> Result<(), Failure> {
    waits_for_its_command(program, start_hint)?;
    let ran =
        run(program, &["run", "sh", "-c", "tr '\\0' ' ' </proc/$PPID/cmdline; echo; exit 3"])?;
    ran.expect(ran.outcome.status == 3, "exit status 3, the command's", start_hint(&ran))?;
    let parent = ran.output().lines().next().unwrap_or_default();
    ran.expect(
        parent.contains(" run "),
        "the command's parent is `step1 run …`",
        "the command must run in a child of the runtime, not in the runtime's own process",
    )?;
    let ran = run(program, &["run", "sh", "-c", "kill -9 $$"])?;
    ran.expect(
        ran.outcome.status == 137,
        "exit status 137: 128 + 9, the command killed by SIGKILL",
        "when signal N kills the command, the runtime's status is 128 + N, as a shell says it \
         (exit_code)",
    )
}

const BECOME_THE_COMMAND: Stage = Stage {
    id: StageId::of("1.2"),
    name: "become the command",
    read: "chapter 1, The diff: child (book/src/step1.md#the-diff)",
    check: become_the_command,
    without_root: WithoutRoot::All,
};

fn become_the_command(program: &Path) -> Result<(), Failure> {
    let ran = run(program, &["run", "echo", "hello"])?;
    let hint = match ran.output() {
        "\n" => "the command ran without its arguments: pass them, command[1..]",
        "echo hello\n" => {
            "the command got its own name as its first argument: its arguments are command[1..]"
        }
        _ => "child must run the command, with its arguments",
    };
    ran.expect(
        ran.output() == "hello\n" && ran.outcome.status == 0,
        "hello, and exit status 0",
        hint,
    )?;
    for (command, status, other, why) in
        [("no-such-command", 127, 126, "not found"), ("/etc/passwd", 126, 127, "not executable")]
    {
        let ran = run(program, &["run", command])?;
        let hint = if ran.outcome.status == other {
            "127 and 126 the wrong way round: 127 for NotFound, 126 else"
        } else if ran.outcome.status == 1 {
            "exec's error became exit status 1, main's for an error: report it, and return 127 \
             for NotFound, 126 else, as a shell does"
        } else {
            "when exec returns, it failed: report the error, and return 127 for NotFound, 126 else"
        };
        ran.expect(
            ran.outcome.status == status && !ran.output().contains("panicked"),
            &format!("exit status {status}, as a shell gives for a command {why}, with a message"),
            hint,
        )?;
    }
    let ran = run(program, &["run", "sh", "-c", "tr '\\0' ' ' </proc/$PPID/cmdline"])?;
    ran.expect(
        ran.output().contains(" run ") && !ran.output().contains(" child "),
        "the command's parent is `step1 run …`, as `child` became the command",
        "the command's parent is the `child` process: child must become the command (exec), \
         not start it and wait",
    )
}

// ---------------------------------------------------------------- step 2

/// The namespaces of the stand-in host, as the net's first process sees them.
const NAMESPACES: [(&str, &str); 4] = [
    ("uts", "CLONE_NEWUTS"),
    ("mnt", "CLONE_NEWNS"),
    ("ipc", "CLONE_NEWIPC"),
    ("net", "CLONE_NEWNET"),
];

const FIVE_NAMESPACES: Stage = Stage {
    id: StageId::of("2.1"),
    name: "five new namespaces",
    read: "chapter 2, The idea (book/src/step2.md#the-idea)",
    check: five_namespaces,
    without_root: WithoutRoot::All,
};

fn five_namespaces(program: &Path) -> Result<(), Failure> {
    // First: a runtime that does not wait leaves its container to the stand-in, whose
    // harm would then hide what went wrong.
    waits_for_its_command(program, waiting_hint)?;
    let script = "echo $$; for ns in uts mnt ipc net; do echo $ns $(readlink /proc/self/ns/$ns) \
                  $(readlink /proc/1/ns/$ns); done";
    let ran = run(program, &["run", "sh", "-c", script])?;
    ran.expect(
        ran.output().lines().next() == Some("1"),
        "the command is PID 1: `echo $$` says 1",
        "the command must start in a new PID namespace: add CLONE_NEWPID to namespaces()",
    )?;
    // /proc is the stand-in host's here (step 2 mounts none): its PID 1 is the net's first
    // process, in the stand-in host's namespaces.
    for (name, flag) in NAMESPACES {
        let line = ran.output().lines().find(|line| line.starts_with(&format!("{name} ")));
        let same = line.is_some_and(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            words.len() == 3 && words[1] == words[2]
        });
        ran.expect(
            line.is_some() && !same,
            &format!("the command in a {name} namespace of its own"),
            &format!("the command is in the host's {name} namespace: add {flag} to namespaces()"),
        )?;
    }
    Ok(())
}

const PRIVATE_MOUNTS: Stage = Stage {
    id: StageId::of("2.2"),
    name: "mounts that stay in the container",
    read: "chapter 2, Shared mounts (book/src/step2.md#shared-mounts)",
    check: private_mounts,
    without_root: WithoutRoot::All,
};

/// The mount points of the host, which the stand-in's copy of its mounts has too.
fn mount_points() -> Vec<String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo.lines().filter_map(|line| line.split(' ').nth(4)).map(str::to_string).collect()
}

/// Where the check mounts: a directory of `/` itself, and a mount point of its own beneath
/// `/` (`/dev/shm` on most machines), where a mount leaks if `/` alone was made private.
fn mount_targets() -> (&'static str, &'static str) {
    let points = mount_points();
    let is_point = |dir: &&str| points.iter().any(|point| point == dir);
    let on_root = ["/srv", "/opt", "/media", "/home", "/root", "/mnt", "/tmp"]
        .into_iter()
        .find(|dir| Path::new(dir).is_dir() && !is_point(dir))
        .unwrap_or("/srv");
    let beneath =
        ["/dev/shm", "/run", "/dev", "/tmp", "/boot"].into_iter().find(is_point).unwrap_or("/dev");
    (on_root, beneath)
}

fn private_mounts(program: &Path) -> Result<(), Failure> {
    let (on_root, beneath) = mount_targets();
    // The stand-in's mounts, as its first process (PID 1 of the /proc that step 2 keeps)
    // sees them: whether its / is still shared, and which of the container's mounts reached it.
    let script = format!(
        "mount -t tmpfs byoc-check {on_root} && mount -t tmpfs byoc-check {beneath} && \
         awk '$5 == \"/\" {{ print \"/\", ($7 ~ /^shared:/ ? \"shared\" : \"not shared\") }} \
         / - tmpfs byoc-check / {{ print \"leaked:\", $5 }}' /proc/1/mountinfo"
    );
    let ran = run_judging_harm(program, &["run", "sh", "-c", &script])?;
    let leaked = |dir: &str| ran.output().lines().any(|line| line == format!("leaked: {dir}"));
    let hint = if ran.outcome.status != 0 && !ran.output().contains("mount:") {
        "the runtime failed before the command ran (its error is above): make_mounts_private \
         is mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL), a change of propagation only"
            .to_string()
    } else if ran.output().contains("/ not shared") {
        "the host's own / is no longer shared: its mounts were made private in the runtime, \
         on the host's side of clone; make them private in the container, after clone, in its \
         mount namespace"
            .to_string()
    } else if leaked(on_root) {
        format!(
            "the container's mount on {on_root} reached the host: / was not made private in the \
             container: mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL)"
        )
    } else if leaked(beneath) {
        format!(
            "the container's mount on {beneath}, a mount of its own beneath /, reached the host: \
             / was made private but not the mounts beneath it, for which MS_REC is needed"
        )
    } else {
        "the mounts must be made, in the container, and none reach the host".to_string()
    };
    ran.expect(
        ran.outcome.status == 0 && ran.output() == "/ shared\n",
        &format!("the mounts on {on_root} and {beneath} made in the container, none on the host"),
        &hint,
    )?;
    checked(ran).map(drop)
}

const HOSTNAME_AND_NETWORK: Stage = Stage {
    id: StageId::of("2.3"),
    name: "a hostname and a network of its own",
    read: "chapter 2, The diff: set_hostname, bring_up_loopback (book/src/step2.md#the-diff)",
    check: hostname_and_network,
    without_root: WithoutRoot::All,
};

fn hostname_and_network(program: &Path) -> Result<(), Failure> {
    let ran = run(program, &["run", "--hostname", "box", "hostname"])?;
    // The stand-in's hostname is a copy of the host's.
    let host = nix::unistd::gethostname().unwrap_or_default();
    let hint = if ran.outcome.status != 0 {
        "the runtime failed before the command ran (its error is above): set_hostname, then \
         bring_up_loopback"
    } else if ran.output().trim_end() == host.to_string_lossy() {
        "the container's hostname is still the host's: set_hostname must call sethostname(2)"
    } else if ran.output() == "container\n" {
        "the hostname is the default, not the one --hostname gives: sethostname(2) to it"
    } else {
        "set the hostname to --hostname with sethostname(2), in the child"
    };
    ran.expect(ran.output() == "box\n", "box: the container's hostname is --hostname", hint)?;
    let ran = run(program, &["run", "cat", "/proc/net/dev"])?;
    let devices: Vec<&str> = ran.output().lines().skip(2).map(str::trim_start).collect();
    ran.expect(
        devices.len() == 1 && devices[0].starts_with("lo:"),
        "one network device, lo",
        "the container must have a network namespace of its own: CLONE_NEWNET",
    )?;
    let ran = run(program, &["run", "ip", "-o", "link", "show", "lo"])?;
    ran.expect(
        ran.output().contains("<LOOPBACK,UP"),
        "lo is UP",
        "lo is down in the container: bring it up with ioctl SIOCSIFFLAGS, its flags IFF_UP",
    )
}

const WITHOUT_ROOT: Stage = Stage {
    id: StageId::of("2.4"),
    name: "without root: a user namespace of its own",
    read: "chapter 2, Without root: a user namespace (book/src/step2-rootless.md#without-root-a-user-namespace)",
    check: without_root,
    without_root: WithoutRoot::AllBut("--userns-remap, which is root's"),
};

/// What the container says of its IDs: user, group, the first line of each map, hostname.
const IDS: &str = "id -u; id -g; set -- $(cat /proc/self/uid_map); echo $1 $2 $3; \
                   set -- $(cat /proc/self/gid_map); echo $1 $2 $3; hostname";

fn without_root(program: &Path) -> Result<(), Failure> {
    let ran = run_rootless(program, &["run", "sh", "-c", IDS])?;
    let (uid, gid, who) = match rootless() {
        true => {
            (nix::unistd::Uid::effective().as_raw(), nix::unistd::Gid::effective().as_raw(), "you")
        }
        false => (common::NOBODY, common::NOBODY, "nobody, the user who ran it"),
    };
    let lines: Vec<&str> = ran.output().lines().collect();
    let hint = if ran.outcome.status != 0 {
        "the runtime failed to map the IDs (its error is above): rootless, it must write \
         \"deny\" to the child's setgroups before its gid_map, then \"0 UID 1\" to uid_map and \
         \"0 GID 1\" to gid_map: the ID inside, the ID outside, how many (chapter 2, Without root)"
    } else if lines.get(3).is_some_and(|line| line.is_empty()) {
        "the child's gid_map is not written: its group is unmapped; write \"0 GID 1\" to it"
    } else {
        "rootless, the runtime must deny setgroups, then write \"0 UID 1\" to the child's \
         uid_map and \"0 GID 1\" to its gid_map, before the child goes on (chapter 2, Without root)"
    };
    ran.expect(
        ran.outcome.status == 0
            && ran.output() == format!("0\n0\n0 {uid} 1\n0 {gid} 1\ncontainer\n"),
        &format!(
            "0 and 0, then 0 {uid} 1 and 0 {gid} 1, then container: root in the container, and \
             that root is {who}"
        ),
        hint,
    )?;
    if rootless() {
        return Ok(()); // --userns-remap is root's
    }
    // As root, remapped: from a directory that others may enter, since the container's root
    // is then a stranger to the directory it starts in (this project's may be private).
    let checkout = common::RootlessCheckout::of(program, false);
    let (dir, exe) = (checkout.dir.to_string_lossy(), checkout.exe.to_string_lossy());
    let args = ["run", "--userns-remap", "100000", "sh", "-c", IDS];
    let in_dir = [&["-c", r#"cd "$0" && exec "$@""#, &dir, &exe][..], &args].concat();
    let shown = format!("just yours {} {}", step_of(program), common::shell_words(&args));
    let ran = run_shown(shown, Path::new("/bin/sh"), &in_dir)?;
    let maps = ran.output().lines().skip(2).take(2);
    let hint = if maps.clone().any(|map| map.starts_with("0 100000 ") && map != "0 100000 65536") {
        "--userns-remap maps 65536 IDs, 0 to 65535, not one: \"0 FIRST 65536\" to uid_map and \
         gid_map (chapter 2, As root, a user namespace too)"
    } else {
        "as root, --userns-remap FIRST must write \"0 FIRST 65536\" to the child's uid_map and \
         gid_map (chapter 2, As root, a user namespace too)"
    };
    ran.expect(
        ran.outcome.status == 0
            && ran.output() == "0\n0\n0 100000 65536\n0 100000 65536\ncontainer\n",
        "0 and 0, then 0 100000 65536 twice, then container: root in the container, and that \
         root is 100000 on the host, the first of 65536 IDs",
        hint,
    )
}

// ---------------------------------------------------------------- step 3

const REFUSE_NO_ROOTFS: Stage = Stage {
    id: StageId::of("3.1"),
    name: "refuse what is no root filesystem",
    read: "chapter 3, The diff: check_rootfs (book/src/step3.md#the-diff)",
    check: refuse_no_rootfs,
    without_root: WithoutRoot::All,
};

/// Where the rootfs of the check's own has its shell: a path that the host lacks.
const ONLY_IN_THE_ROOTFS: &str = "byoc-only-in-the-rootfs";

/// Where the check makes its own root filesystems: in rootfs/tmp, on the filesystem of the
/// rootfs itself, where programs may run (a /tmp may be mounted noexec), and which a learner
/// without root may write.
fn scratch_for_rootfs() -> PathBuf {
    let name = format!("byoc-check-3-1-{}", std::process::id());
    let tmp = Path::new(common::PROJECT).join("rootfs/tmp");
    match tmp.is_dir() {
        true => tmp.join(name),
        false => std::env::temp_dir().join(name),
    }
}

/// Two root filesystems in `scratch`, made cheaply: `empty`, with no bin/sh, and `linked`,
/// whose bin/sh is an absolute link, /byoc-only-in-the-rootfs/busybox, that resolves inside
/// it alone (as a Docker image's may), to rootfs/'s busybox (a hard link, else a copy).
fn scratch_rootfs(scratch: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
    let (empty, linked) = (scratch.join("empty"), scratch.join("linked"));
    fs::create_dir_all(&empty)?;
    fs::create_dir_all(linked.join("bin"))?;
    fs::create_dir_all(linked.join(ONLY_IN_THE_ROOTFS))?;
    let busybox = Path::new(common::PROJECT).join("rootfs/bin/busybox");
    let copy = linked.join(ONLY_IN_THE_ROOTFS).join("busybox");
    fs::hard_link(&busybox, &copy).or_else(|_| fs::copy(&busybox, &copy).map(drop))?;
    let target = Path::new("/").join(ONLY_IN_THE_ROOTFS).join("busybox");
    std::os::unix::fs::symlink(target, linked.join("bin/sh"))?;
    Ok((empty, linked))
}

fn refuse_no_rootfs(program: &Path) -> Result<(), Failure> {
    let scratch = scratch_for_rootfs();
    let judged = match scratch_rootfs(&scratch) {
        Ok((empty, linked)) => judge_rootfs(program, &empty, &linked),
        Err(error) => panic!("cannot make the check's rootfs in {}: {error}", scratch.display()),
    };
    let _ = fs::remove_dir_all(&scratch);
    judged
}

fn judge_rootfs(program: &Path, empty: &Path, linked: &Path) -> Result<(), Failure> {
    let empty = empty.to_string_lossy();
    for (rootfs, problem) in
        [("no-such-dir", "there is no such directory"), (empty.as_ref(), "it has no bin/sh")]
    {
        let ran = run(program, &["run", "--rootfs", rootfs, "true"])?;
        let hint = if ran.outcome.status != 1 {
            "the run went on: check_rootfs must refuse a --rootfs that is no directory or has no \
             bin/sh, returning its error, so that the runtime stops, status 1, before anything \
             is made"
        } else {
            "check_rootfs's error must name the --rootfs it refuses, and why"
        };
        ran.expect(
            ran.outcome.status == 1 && ran.output().contains(rootfs),
            &format!("exit status 1, and a message that names {rootfs}: {problem}"),
            hint,
        )?;
    }
    // Then a rootfs accepted, before the link's run: a runtime that does not wait leaves its
    // container to the stand-in, whose harm would hide what went wrong.
    waits_for_its_command(program, waiting_hint)?;
    let linked = linked.to_string_lossy();
    let ran = run(program, &["run", "--rootfs", &linked, "sh", "-c", "exit 5"])?;
    ran.expect(
        ran.outcome.status == 5,
        &format!(
            "exit status 5: {linked} accepted, its bin/sh a link to \
             /{ONLY_IN_THE_ROOTFS}/busybox, which is there once inside"
        ),
        "a rootfs whose bin/sh is an absolute link resolves it only from inside: on the host, \
         look at the link itself (symlink_metadata), not where it points (exists)",
    )
}

const PIVOT_INTO_ROOTFS: Stage = Stage {
    id: StageId::of("3.2"),
    name: "pivot into the rootfs",
    read: "chapter 3, Why the bind mount (book/src/step3.md#why-the-bind-mount)",
    check: pivot_into_rootfs,
    without_root: WithoutRoot::All,
};

/// The names in a directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn pivot_into_rootfs(program: &Path) -> Result<(), Failure> {
    let ran = run(program, &["run", "ls", "-A", "/"])?;
    let mut seen: Vec<String> = ran.output().split_whitespace().map(str::to_string).collect();
    seen.sort();
    let hint = if ran.output().contains("pivot_root") {
        "pivot_root(2) refused: the new root must be a mount point, so bind-mount the rootfs on \
         itself first (chapter 3, Why the bind mount)"
    } else if ran.outcome.status != 0 {
        "enter_rootfs failed (its error is above): first bind-mount the rootfs on itself, flags \
         MS_BIND | MS_REC"
    } else if seen == entries(Path::new("/")) {
        "the container's / is the host's: the old root went on top of the new one; \
         pivot_root(new_root, put_old) wants put_old beneath new_root, rootfs/oldrootfs"
    } else {
        "the container's / must be rootfs/: pivot_root(2) into it"
    };
    let entries = entries(&Path::new(common::PROJECT).join("rootfs"));
    ran.expect(
        ran.outcome.status == 0 && seen == entries,
        &format!("the entries of rootfs/: {}", entries.join(" ")),
        hint,
    )?;
    let ran = run(
        program,
        &["run", "sh", "-c", "pwd; test -e /oldrootfs/etc/os-release && echo old root"],
    )?;
    let hint = match ran.output().lines().next() {
        Some("/") => "the old root goes to rootfs/oldrootfs (put_old)",
        _ => {
            "the current directory is still the old one, now beneath /oldrootfs: after \
              pivot_root, chdir(\"/\")"
        }
    };
    ran.expect(
        ran.output() == "/\nold root\n",
        "/, the current directory, and the host's old root at /oldrootfs",
        hint,
    )
}

// ---------------------------------------------------------------- step 4

/// Shell functions for a check's script, run in the net: `container` lists the processes
/// of PID namespaces other than the script's own, the container's, zombies left out (their
/// namespace is gone); `started NAME` says whether one of them is NAME; `ended PID` whether
/// PID, a child of the script, has ended (a zombie until `wait`); `within N TEST` whether
/// TEST holds within N tenths of a second. The runtime, a child of the script, is killed by
/// its PID, and what is left of the container by theirs, after the verdict is printed.
const CONTAINER_PROCESSES: &str = r#"ours=$(readlink /proc/self/ns/pid)
container() {
    for p in /proc/[0-9]*; do
        ns=$(readlink "$p/ns/pid" 2>/dev/null) && [ "$ns" != "$ours" ] && echo "${p#/proc/}"
    done
}
started() {
    for p in $(container); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ] && return 0; done
    return 1
}
ended() {
    state=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)
    [ -z "$state" ] || [ "$state" = Z ]
}
# within N TEST: whether TEST holds within N tenths of a second.
within() { i=0; until eval "$2" || [ $i -ge "$1" ]; do sleep 0.1; i=$((i + 1)); done; eval "$2"; }
"#;

/// `script`, after CONTAINER_PROCESSES, run by `sh` in the net with the program as `$0`;
/// `shown` is how a learner would do it by hand.
fn run_script(program: &Path, shown: &str, script: &str) -> Result<Ran, Failure> {
    let script = format!("{CONTAINER_PROCESSES}{script}");
    let step = program.to_string_lossy();
    run_shown(shown.to_string(), Path::new("sh"), &["-c", &script, &step])
}

const INIT_IS_PID_1: Stage = Stage {
    id: StageId::of("4.1"),
    name: "our init is PID 1",
    read: "chapter 4, Part 1: PID 1 and signals (book/src/step4-1-init.md#part-1-pid-1-and-signals)",
    check: init_is_pid_1,
    without_root: WithoutRoot::All,
};

fn init_is_pid_1(program: &Path) -> Result<(), Failure> {
    let ran = run(program, &["run", "sh", "-c", "echo $$"])?;
    ran.expect(
        ran.output() == "2\n",
        "2: the command is PID 2, our init PID 1",
        "the child must fork the command, and stay as its init",
    )?;
    let ran = run(program, &["run", "sh", "-c", "kill -9 $$"])?;
    ran.expect(
        ran.outcome.status == 137,
        "exit status 137: the command, PID 2, is killed by SIGKILL",
        "init must exit with the command's status, 128 + N for signal N",
    )?;
    let ran = run(program, &["run", "no-such-command"])?;
    ran.expect(
        ran.outcome.status == 127,
        "exit status 127: the command's process could not exec it",
        "the command's process (start_command's child) must exit with the status that \
         become_command returns, 127 for a command not found, and never return into init",
    )?;
    let ran = run(
        program,
        &["run", "sh", "-c", "sh -c 'sleep 0.1 &'; sleep 0.5; ps -o stat | grep -c ^Z"],
    )?;
    ran.expect(
        ran.output() == "0\n",
        "no zombie: init reaps the orphan",
        "init must reap every child that ends, orphans too: it learns that one ended from \
         SIGCHLD, which it blocks and reads from its signalfd, then calls waitpid(-1, WNOHANG) \
         until none is left",
    )?;
    signals_reach_the_command(program)?;
    the_container_dies_with_its_runtime(program)
}

/// A SIGTERM sent to the runtime, as `docker stop` sends one, reaches the command, whose trap
/// then ends it with a status of its own.
fn signals_reach_the_command(program: &Path) -> Result<(), Failure> {
    let script = r#""$0" run sh -c 'trap "echo got TERM; exit 7" TERM; sleep 30 & wait' &
runtime=$!
within 50 'started sleep'
kill -TERM $runtime
within 30 "ended $runtime" || { echo "still running 3 s after SIGTERM"; kill -KILL $runtime; }
wait $runtime
echo "exit status $?"
left=$(container); [ -z "$left" ] || kill -KILL $left
"#;
    let shown = "just yours 4 run sh -c 'trap \"echo got TERM; exit 7\" TERM; sleep 30 & wait' & \
                 sleep 1; kill -TERM $!";
    let ran = run_script(program, shown, script)?;
    ran.expect(
        ran.output().starts_with("got TERM\n") && ran.output().ends_with("exit status 7\n"),
        "got TERM, then exit status 7: the command's trap ran, and its status came back",
        "SIGTERM sent to the runtime did not reach the command: init must block the FORWARDED \
         signals (block_signals), read each from its signalfd and pass each on to the command \
         (supervise)",
    )
}

/// The runtime killed by SIGKILL, which it cannot pass on, as the chapter's Check your work
/// does: the container must end with it, even a command that ignores SIGTERM.
fn the_container_dies_with_its_runtime(program: &Path) -> Result<(), Failure> {
    let script = r#""$0" run sh -c 'trap "" TERM INT HUP; sleep 30' &
runtime=$!
within 50 'started sleep'
kill -KILL $runtime
wait $runtime 2>/dev/null
if within 20 '[ -z "$(container)" ]'; then
    echo "the container ended"
else
    left=$(container)
    echo "still running 2 s after the runtime was killed:" $(cat $(printf '/proc/%s/comm ' $left))
    kill -KILL $left
fi
"#;
    let shown = "just yours 4 run sh -c 'trap \"\" TERM INT HUP; sleep 30' & sleep 1; kill -9 $!";
    let ran = run_script(program, shown, script)?;
    ran.expect(
        ran.output().lines().any(|line| line == "the container ended"),
        "the container ended: it dies with its runtime",
        "the container lived on without its runtime: die_with_runtime must ask the kernel for \
         SIGKILL when the runtime dies, prctl(PR_SET_PDEATHSIG, SIGKILL) (a signal that init \
         blocks, or the command ignores, lets the container live on)",
    )
}

/// The mounts of a container, as `awk '{ print $5, $6 }' /proc/self/mountinfo` lists them:
/// (mount point, options), the last at a point on top.
fn mounts(lines: &str) -> Vec<(&str, &str)> {
    lines.lines().filter_map(|line| line.split_once(' ')).collect()
}

/// The options of the mount on top at `point`, if one is there.
fn options_at<'a>(mounts: &[(&str, &'a str)], point: &str) -> Option<&'a str> {
    mounts.iter().rev().find(|(at, _)| *at == point).map(|(_, options)| *options)
}

fn read_only(options: Option<&str>) -> bool {
    options.is_some_and(|options| options == "ro" || options.starts_with("ro,"))
}

/// The mounts of `points` in `table` that lack one of `flags` (nosuid, nodev, noexec: as
/// mountinfo's per-mount options say them): `POINT (OPTIONS)` each, for a hint.
fn lacking(table: &[(&str, &str)], points: &[(&str, &[&str])]) -> Vec<String> {
    points
        .iter()
        .filter_map(|(point, flags)| {
            let options = options_at(table, point)?;
            let has = |flag: &&str| options.split(',').any(|option| option == *flag);
            (!flags.iter().all(has))
                .then(|| format!("{point} ({options}, not {})", flags.join(",")))
        })
        .collect()
}

/// Where a container's mounts may be: its root, and its own filesystems below it.
const OWN_MOUNTS: [&str; 4] = ["/proc", "/sys", "/dev", "/tmp"];

const FILESYSTEMS_OF_ITS_OWN: Stage = Stage {
    id: StageId::of("4.2"),
    name: "filesystems of its own, the old root gone",
    read: "chapter 4, Part 2: The filesystems the container sees (book/src/step4-2-filesystems.md#part-2-the-filesystems-the-container-sees)",
    check: filesystems_of_its_own,
    without_root: WithoutRoot::All,
};

fn filesystems_of_its_own(program: &Path) -> Result<(), Failure> {
    // The old root, stacked over the new one by pivot_root(".", "."), is what `/..` leads to
    // until it is unmounted: the same inode, 2, as any root, but another device.
    // The mounts at / and outside the container's own filesystems, and /sys's and
    // /proc/sys's: a few lines, where the host's whole table would be dozens.
    let script = "stat -c '%d:%i' / /..; awk '$5 !~ \"^/(proc|sys|dev|tmp)/\" || \
                  $5 ~ \"^/(proc/sys|dev/pts|dev/shm)$\" { print $5, $6 }' /proc/self/mountinfo";
    let ran = run(program, &["run", "sh", "-c", script])?;
    ran.expect(
        ran.outcome.status == 0,
        "exit status 0: the command ran",
        "the container did not run its command: the error above says where it stopped",
    )?;
    let mut lines = ran.output().lines();
    let (root, parent) = (lines.next(), lines.next());
    let rest: Vec<&str> = lines.collect();
    let rest = rest.join("\n");
    let table = mounts(&rest);
    let foreign: Vec<&str> = table
        .iter()
        .map(|(point, _)| *point)
        .filter(|point| {
            *point != "/"
                && !OWN_MOUNTS.iter().any(|own| {
                    point == own || point.strip_prefix(own).is_some_and(|p| p.starts_with('/'))
                })
        })
        .collect();
    let at_root = table.iter().filter(|(point, _)| *point == "/").count();
    ran.expect(
        ran.outcome.status == 0
            && root.is_some()
            && root == parent
            && at_root == 1
            && foreign.is_empty(),
        "/.. the same (device, inode) as /, one mount at /, and none but at /, /proc, /sys, \
         /dev and /tmp: nothing of the host's",
        &format!(
            "the host's tree is still in the container ({} mounts at /, and {}): after \
             pivot_root(\".\", \".\"), the old root is stacked over the new one, and /.. leads \
             to it until umount2(\".\", MNT_DETACH) takes it away",
            at_root,
            match foreign.is_empty() {
                true => "no other mount point".to_string(),
                false => format!("host mount points such as {}", foreign[0]),
            }
        ),
    )?;
    // Each filesystem of its own without what no program there needs: set-user-ID bits,
    // device files, programs to run (chapter 4, Part 2: The code).
    let (all, no_exec) = (&["nosuid", "nodev", "noexec"][..], &["nosuid", "noexec"][..]);
    let flags = [
        ("/proc", all),
        ("/sys", all),
        ("/dev", no_exec),
        ("/dev/pts", no_exec),
        ("/dev/shm", all),
        ("/tmp", &["nosuid", "nodev"][..]),
    ];
    let lax = lacking(&table, &flags);
    ran.expect(
        lax.is_empty(),
        "/proc, /sys and /dev/shm nosuid,nodev,noexec; /dev and /dev/pts nosuid,noexec; /tmp \
         nosuid,nodev",
        &format!(
            "mounted without all of its flags: {}: give mount_fs each mount's MS_NOSUID, \
             MS_NODEV and MS_NOEXEC as mount_filesystems lists them, or-ed with |, not &",
            lax.join("; ")
        ),
    )?;
    ran.expect(
        read_only(options_at(&table, "/sys")),
        "/sys mounted ro: its mount's options start with ro",
        "/sys is mounted read-write: mount sysfs with MS_RDONLY, else root in the container \
         may write the host's kernel and device settings there",
    )?;
    // Its mount's options, not a write: without root, the kernel refuses most writes there
    // anyway, read-only or not (their files are the host's root's, whom the net does not map).
    ran.expect(
        read_only(options_at(&table, "/proc/sys")),
        "/proc/sys mounted ro: its mount's options start with ro",
        "/proc/sys is writable in the container: mount_filesystems must end with \
         protect_host_paths, whose make_read_only binds each host-wide part of /proc on \
         itself, then remounted MS_RDONLY",
    )?;
    let ran = run(program, &["run", "ps", "-o", "pid,comm"])?;
    ran.expect(
        ran.output().lines().count() == 3,
        "three lines: the header, init and ps, the container's processes alone",
        "mount a new proc on /proc, in the container's PID namespace",
    )?;
    let devices = ["null", "zero", "full", "random", "urandom", "tty"];
    let script = format!("ls /dev; cd /dev && stat -c '%a %n' {}", devices.join(" "));
    let ran = run(program, &["run", "sh", "-c", &script])?;
    let listed = ["pts", "shm"].iter().chain(&devices);
    ran.expect(
        listed.clone().all(|device| ran.output().lines().any(|line| line == *device)),
        &format!("/dev holds {}", listed.copied().collect::<Vec<_>>().join(" ")),
        "/dev is a tmpfs with the six devices (mknod) and /dev/pts and /dev/shm mounted",
    )?;
    ran.expect(
        devices.iter().all(|device| ran.output().lines().any(|l| l == format!("666 {device}"))),
        "666 for each device: readable and writable by every user",
        "the devices must be made mode 0666 whatever the caller's umask: set the umask to 0 \
         around mknod (make_devices)",
    )
}

const FEWER_PRIVILEGES: Stage = Stage {
    id: StageId::of("4.3"),
    name: "a command with fewer privileges",
    read: "chapter 4, Part 3: The command's privileges (book/src/step4-3-privileges.md#part-3-the-commands-privileges)",
    check: fewer_privileges,
    without_root: WithoutRoot::AllBut("--user, which needs more than your own ID mapped"),
};

fn fewer_privileges(program: &Path) -> Result<(), Failure> {
    let ran = run(program, &["run", "grep", "-E", "^(CapBnd|NoNewPrivs)", "/proc/self/status"])?;
    ran.expect(
        field(ran.output(), "NoNewPrivs:") == Some("1"),
        "NoNewPrivs 1",
        "set no_new_privs, last before exec (restrict): without it, the kernel refuses the \
         seccomp filter to a command without CAP_SYS_ADMIN, and a set-user-ID program could \
         gain back what was dropped",
    )?;
    ran.expect(
        field(ran.output(), "CapBnd:") == Some("00000000a00425fb"),
        "CapBnd 00000000a00425fb: Docker's default capabilities but CAP_MKNOD",
        "drop from the bounding set every capability but the 13 kept: PR_CAPBSET_DROP, \
         CapSet::Bounding (the effective set alone comes back at the next exec)",
    )?;
    // Without root, the net maps one ID, root: no user 1000 to switch to, no group to keep.
    if !rootless() {
        user_switched(program)?;
    }
    // From a caller whose limits are not the defaults: the command's must be the defaults.
    let script = r#"ulimit -S -n 512 && exec "$0" run sh -c 'ulimit -n; ulimit -H -n'"#;
    let shown = "ulimit -S -n 512; just yours 4 run sh -c 'ulimit -n; ulimit -H -n'";
    let ran = run_script(program, shown, script)?;
    ran.expect(
        ran.output() == "1024\n4096\n",
        "1024, then 4096: at most 1024 open files, 4096 if the command asks, whatever the \
         caller's limits",
        "set the default rlimits, nofile=1024:4096, first (set_resource_limits, in restrict)",
    )
}

/// `--user learner`, run by a caller that has supplementary groups, as root often has (sudo
/// gives its own): the command has the user's IDs, and nothing of the caller's.
fn user_switched(program: &Path) -> Result<(), Failure> {
    let step = program.to_string_lossy();
    let script = "id -u; id -g; grep -E '^(Groups|CapEff)' /proc/self/status";
    let args = ["--groups", "4,24", &step, "run", "--user", "learner", "sh", "-c", script];
    let shown = format!(
        "setpriv --groups 4,24 just yours 4 run --user learner sh -c {}",
        common::shell_words(&[script])
    );
    let ran = run_shown(shown, Path::new("setpriv"), &args)?;
    let hint = if ran.output().contains("cannot drop") {
        "the capabilities must go before the user changes: setuid(2) gives up CAP_SETPCAP, \
         which dropping them needs (chapter 4, Part 3)"
    } else {
        "switch to --user: setgroups, setgid, then setuid, in that order (setuid gives up the \
         right to change the others)"
    };
    let mut lines = ran.output().lines();
    let (uid, gid) = (lines.next(), lines.next());
    ran.expect(ran.outcome.status == 0 && uid == Some("1000"), "uid 1000", hint)?;
    ran.expect(
        gid == Some("1000"),
        "gid 1000, the user's group",
        "the command's group is not the user's: setgid(2) to it, before setuid(2)",
    )?;
    ran.expect(
        field(ran.output(), "Groups:") == Some(""),
        "no supplementary group: Groups empty",
        "the command kept the caller's supplementary groups (here 4 and 24): clear them with \
         setgroups([]) before setgid and setuid",
    )?;
    ran.expect(
        field(ran.output(), "CapEff:") == Some("0000000000000000"),
        "no capability: CapEff 0",
        "a user other than root keeps no capability: setuid(2) from root clears them, if the \
         capabilities were dropped first and no ambient one is left",
    )
}

const NOTHING_OF_THE_CALLERS: Stage = Stage {
    id: StageId::of("4.4"),
    name: "nothing of the caller's: its files, its process group",
    read: "chapter 4, Part 4: Signals and the terminal (book/src/step4-4-host.md#signals-and-the-terminal), and Inherited files (book/src/step4-4-host.md#inherited-files)",
    check: nothing_of_the_callers,
    without_root: WithoutRoot::All,
};

fn nothing_of_the_callers(program: &Path) -> Result<(), Failure> {
    // The caller holds 4, 7 and 9 open, as a shell's `exec 7</tmp` would. The safety net
    // keeps its report open as its fd 3, and the runtime puts its socket there for init,
    // which closes it once ready: the shell lists its own, with no pipe of its own open
    // meanwhile (a pipeline's would show). Then init's, which must hold none of the caller's.
    let inner = "ls /proc/\\$\\$/fd; echo init:; ls /proc/1/fd";
    let script = format!("exec 4</ 7</ 9</; exec \"$0\" run sh -c \"{inner}\"");
    let shown = format!("exec 4</ 7</ 9</; just yours 4 run sh -c \"{inner}\"");
    let ran = run_script(program, &shown, &script)?;
    let (command, init) = ran.output().split_once("init:\n").unwrap_or((ran.output(), ""));
    let command: Vec<&str> = command.lines().collect();
    let init: Vec<&str> = init.lines().collect();
    let hint = if command == ["0", "1", "2", "4"] {
        "descriptor 4, the first above the runtime's socket (3), was left open: \
         close_range(4, ~0U, 0) closes from 4 on"
    } else {
        "the caller's descriptors reached the command: init must close every descriptor above \
         3 before anything else, with close_range(2)"
    };
    ran.expect(
        command == ["0", "1", "2"],
        "0 1 2: the command's own descriptors, none of the caller's",
        hint,
    )?;
    ran.expect(
        !init.iter().any(|fd| ["7", "9"].contains(fd)),
        "none of the caller's descriptors, 7 and 9, in init's /proc/1/fd",
        "init still holds the caller's descriptors: close_range must close them (flags 0), not \
         mark them close-on-exec, for init itself never execs again",
    )?;
    let ran = run(program, &["run", "sh", "-c", "cut -d' ' -f5,6 /proc/$$/stat"])?;
    let hint = if ran.output() == "1 0\n" {
        "a process group of the container's own, in the caller's session (0: outside the \
         container), as setpgid makes: only setsid() makes a session too, which a terminal \
         of its own needs"
    } else {
        "0 means a process group or session outside the container, the caller's, which \
         kill(0) in the container would signal whole: the new process must setsid() first"
    };
    ran.expect(
        ran.output() == "1 1\n",
        "1 1: the command is in init's process group and session, the container's own",
        hint,
    )
}

const HOST_PATHS_AND_LAYER: Stage = Stage {
    id: StageId::of("4.5"),
    name: "the host's paths hidden, rootfs/ never written",
    read: "chapter 4, Part 4: The host's paths (book/src/step4-4-host.md#the-hosts-paths), and A throwaway layer (book/src/step4-4-host.md#a-throwaway-layer)",
    check: host_paths_and_layer,
    without_root: WithoutRoot::All,
};

fn host_paths_and_layer(program: &Path) -> Result<(), Failure> {
    let name = format!("stage-4-5-{}", std::process::id());
    let host_copy = Path::new(common::PROJECT).join("rootfs/root").join(&name);
    let script = format!("echo written > /root/{name} && cat /root/{name}");
    let ran = run(program, &["run", "sh", "-c", &script])?;
    let written_on_the_host = fs::remove_file(&host_copy).is_ok();
    ran.expect(
        ran.outcome.status == 0 && ran.output() == "written\n" && !written_on_the_host,
        &format!("written: the file made in the container, and none in rootfs/root/{name}"),
        "the container must write to a layer over rootfs/, never to rootfs/ itself: \
         overlayfs with the rootfs as its lower layer (/proc/self/fd/N, opened before the \
         tmpfs covers its path) and a tmpfs for its upper one",
    )?;
    // And the mounts of the paths hidden or read-only: a few lines of the mount table.
    let script = "wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l; \
                  awk '$5 ~ \"^/(sys/firmware|proc/(acpi|bus|fs|irq|sys))?$\" { print $5, $6 }' \
                  /proc/self/mountinfo";
    let ran = run(program, &["run", "sh", "-c", script])?;
    let mut lines = ran.output().lines();
    let (timers, firmware) = (lines.next(), lines.next());
    ran.expect(
        timers == Some("0") && firmware == Some("0"),
        "0 and 0: /proc/timer_list and /sys/firmware hidden, empty",
        "hide each of MASKED that exists: a read-only tmpfs on a directory, /dev/null on a file",
    )?;
    let rest: Vec<&str> = lines.collect();
    let rest = rest.join("\n");
    let table = mounts(&rest);
    ran.expect(
        read_only(options_at(&table, "/sys/firmware")),
        "/sys/firmware's tmpfs mounted ro",
        "the masked directories are writable: hide them under a read-only tmpfs, MS_RDONLY, \
         else the container may write there (touch /sys/firmware/x)",
    )?;
    // The hidden directories' tmpfs, as the rest of /sys: nothing to run, no device, no
    // set-user-ID bit there.
    let all = &["nosuid", "nodev", "noexec"][..];
    let lax = lacking(&table, &[("/sys/firmware", all), ("/proc/acpi", all)]);
    ran.expect(
        lax.is_empty(),
        "/sys/firmware's tmpfs (and /proc/acpi's, where there is one) nosuid,nodev,noexec",
        &format!(
            "mounted without all of its flags: {}: a masked directory's tmpfs takes \
             MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC",
            lax.join("; ")
        ),
    )?;
    // The layer at /: nodev, so that a device file shipped in the rootfs opens nothing
    // (chapter 4, Part 4: Device files in the rootfs).
    let lax = lacking(&table, &[("/", &["nodev"])]);
    ran.expect(
        lax.is_empty(),
        "/ mounted nodev",
        &format!(
            "mounted without all of its flags: {}: mount the layer's overlay MS_NODEV (and its \
             tmpfs), else a device file shipped in the rootfs opens the host's device",
            lax.join("; ")
        ),
    )?;
    let writable: Vec<&str> = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"]
        .into_iter()
        .filter(|point| options_at(&table, point).is_some_and(|o| !read_only(Some(o))))
        .collect();
    ran.expect(
        writable.is_empty() && options_at(&table, "/proc/sys").is_some(),
        "/proc/sys, and each of /proc/bus, /proc/fs and /proc/irq there is, mounted ro",
        "make_read_only each of READ_ONLY that exists: the host-wide parts of /proc",
    )?;
    let fill = "dd if=/dev/zero of=/root/big bs=64k count=32 2>/dev/null && echo all written";
    let ran = run(program, &["run", "--tmpfs-size", "1m", "sh", "-c", fill])?;
    ran.expect(
        !ran.output().contains("all written"),
        "2 MiB not written: the layer holds --tmpfs-size 1m at most",
        "the layer's tmpfs must hold --tmpfs-size at most: mount it with size=… (tmpfs_size), \
         or a container fills the host's memory",
    )
}

const SYSTEM_CALLS_REFUSED: Stage = Stage {
    id: StageId::of("4.6"),
    name: "the system calls Docker refuses, refused",
    read: "chapter 4, System calls (book/src/step4-4-syscalls.md#system-calls)",
    check: system_calls_refused,
    without_root: WithoutRoot::All,
};

fn system_calls_refused(program: &Path) -> Result<(), Failure> {
    let rootfs = common::attack_rootfs();
    let ran = run(program, &["run", "sh", "-c", "cat /etc/passwd > /dev/null && ls / | wc -l"])?;
    ran.expect(
        ran.outcome.status == 0 && !ran.output().contains("denied"),
        "an ordinary command runs: the calls Docker allows are allowed",
        "a call that Docker allows was refused: each of allowed_ranges' ranges allows its \
         first and last calls (BPF_JGE first, BPF_JGT last), and the verdicts it jumps to are \
         EPERM, then allow",
    )?;
    let ran = run(program, &["run", "--rootfs", rootfs, "attacks", "syscalls"])?;
    let refused = |line: &str| {
        let expected = if line.starts_with("clone3:") { ": ENOSYS" } else { ": EPERM" };
        line.ends_with(expected)
    };
    ran.expect(
        ran.output().lines().count() == 12 && ran.output().lines().all(refused),
        "each call refused: EPERM, and ENOSYS for clone3",
        "install a filter that refuses every call but Docker's with EPERM, and answers clone3 \
         ENOSYS: glibc then falls back to clone, whose flags a filter can see",
    )?;
    let ran = run(program, &["run", "--rootfs", rootfs, "attacks", "thread"])?;
    ran.expect(
        ran.output() == "a thread ran\n",
        "a thread ran: programs with threads still work",
        "clone3 must fail with ENOSYS, not EPERM, for glibc to start threads with clone",
    )?;
    // Not on a terminal: an ioctl the filter lets through fails ENOTTY, one it refuses EPERM.
    let ran = run(program, &["run", "--rootfs", rootfs, "attacks", "tiocsti", "x"])?;
    ran.expect(
        ran.output() == "TIOCSTI: EPERM\n",
        "TIOCSTI: EPERM, refused by the filter",
        "ioctl must be checked: TIOCSTI and TIOCLINUX refused (not_a_typing_request), as \
         they type into the caller's terminal",
    )?;
    // On a terminal, which script(1) gives the run: ioctls but TIOCSTI and TIOCLINUX work.
    let step = program.to_string_lossy();
    let shown = "script -qec 'just yours 4 run tty' /dev/null".to_string();
    let command = format!("{step} run tty");
    let ran = run_shown(shown, Path::new("script"), &["-qec", &command, "/dev/null"])?;
    ran.expect(
        ran.output().lines().any(|line| line.trim_end().ends_with("/dev/pts/0")),
        "/dev/pts/0: tty finds its terminal, as the ioctls Docker allows are allowed",
        "an ioctl that Docker allows was refused (tty asks TCGETS): ioctl must go through its \
         own check, not_a_typing_request, which refuses TIOCSTI and TIOCLINUX alone",
    )?;
    if cfg!(target_arch = "x86_64") {
        let ran = run(program, &["run", "--rootfs", rootfs, "attacks", "other-abi"])?;
        ran.expect(
            // 139, SIGSEGV: a kernel without the i386 ABI (ia32_emulation=0) runs no such call.
            [128 + 31, 128 + 11].contains(&ran.outcome.status) && !ran.output().contains("ran"),
            "exit status 159: the call of another ABI killed by SIGSYS",
            "a call of another ABI (i386's, int 0x80) ran: the filter must first check the \
             architecture, seccomp_data.arch, and kill a call of any other, whose numbers mean \
             other calls",
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------- step 5

/// Why step 5's stages need root: a cgroup of the net's own, for the step to make its own in.
const A_CGROUP: &str = "a cgroup of its own, which only root can give the net";

const STREAMS_OF_ITS_OWN: Stage = Stage {
    id: StageId::of("4.7"),
    name: "streams and a terminal of its own",
    read: "chapter 4, Part 5: Streams and a terminal of its own (book/src/step4-5-stdio.md#part-5-streams-and-a-terminal-of-its-own)",
    check: streams_of_its_own,
    without_root: WithoutRoot::All,
};

fn streams_of_its_own(program: &Path) -> Result<(), Failure> {
    let step = program.to_string_lossy();
    // Each stream redirected: the container's are pipes of the runtime's, which copies them,
    // never the caller's files themselves.
    let file = common::scratch_dir("stage-4-7");
    let inner = "for fd in 0 1 2; do readlink /proc/self/fd/$fd; done";
    let script = format!(
        "\"$0\" run sh -c '{inner}' < /dev/null > {out} 2> {out}.err; cat {out} {out}.err; \
         rm -f {out} {out}.err",
        out = file.display()
    );
    let shown = format!(
        "just yours 4 run sh -c '{inner}' < /dev/null > {out} 2> {out}.err",
        out = file.display()
    );
    let ran = run_shown(shown, Path::new("sh"), &["-c", &script, &step])?;
    let links: Vec<&str> = ran.output().lines().collect();
    for (fd, stream) in ["stdin", "stdout", "stderr"].into_iter().enumerate() {
        ran.expect(
            ran.outcome.status == 0 && links.get(fd).is_some_and(|l| l.starts_with("pipe:[")),
            "pipe:[…] three times: the container's streams are pipes of the runtime's, not the \
             caller's own files",
            &format!(
                "the container's {stream} is the caller's own file: the new process must dup2 \
                 the runtime's pipes onto 0, 1 and 2 before it execs init (hand_over)"
            ),
        )?;
    }
    let shown = "echo relayed | just yours 4 run cat".to_string();
    let ran = run_shown(shown, Path::new("sh"), &["-c", "echo relayed | \"$0\" run cat", &step])?;
    ran.expect(
        ran.outcome.status == 0 && ran.output() == "relayed\n",
        "relayed: stdin copied in, stdout copied out, the end of the input passed on",
        "the runtime relays each pipe, and closes the container's stdin at the end of its own",
    )?;
    // On a terminal (script(1) gives the run one): the container's own, in its /dev/pts, and
    // its controlling terminal, which /dev/tty opens.
    let inner =
        "tty; readlink /proc/self/fd/1; readlink /proc/self/fd/2; : < /dev/tty && echo controlling";
    let shown = format!("script -qec \"just yours 4 run sh -c '{inner}'\" /dev/null");
    let command = format!("{step} run sh -c '{inner}'");
    let ran = run_shown(shown, Path::new("script"), &["-qec", &command, "/dev/null"])?;
    // (script(1) writes \r\n, and ends its input with a key that the terminal echoes: ^@ or ^D.)
    let said = |what: &str| ran.output().lines().any(|line| line.trim_end().ends_with(what));
    let on_it = ran.output().lines().filter(|line| line.trim_end().ends_with("/dev/pts/0"));
    ran.expect(
        on_it.count() == 3,
        "/dev/pts/0 three times: a terminal of its own, the first of the container's devpts, \
         on stdin (tty), stdout and stderr (readlink)",
        "when a stream is on the caller's terminal, init makes a terminal of its own \
         (make_console) and puts it on each such stream: 0, 1 and 2, each its own dup2",
    )?;
    ran.expect(
        said("controlling"),
        "controlling: /dev/tty opens the container's terminal",
        "the container's terminal must be init's controlling terminal, ioctl TIOCSCTTY: else \
         /dev/tty opens nothing, and Ctrl-C and Ctrl-Z reach no one",
    )
}

const LIMITS_ENFORCED: Stage = Stage {
    id: StageId::of("5.1"),
    name: "a cgroup with the limits",
    read: "chapter 5, Move 1: make (book/src/step5-1-cgroup.md#move-1-make), and Move 2: limit (book/src/step5-1-cgroup.md#move-2-limit)",
    check: limits_enforced,
    without_root: WithoutRoot::None(A_CGROUP),
};

/// Fifty sleeps, in a shell that says each one it started: with `--pids 20`, 18 start.
const FORKS: &str = "for i in $(seq 50); do sleep 3 & echo \"started $i\"; done";

/// How many of `FORKS`'s sleeps started.
fn started(ran: &Ran) -> usize {
    ran.output().lines().filter(|line| line.starts_with("started ")).count()
}

/// The lines of /proc/self/cgroup, as the container saw it, for the trees that hold the
/// memory or pids controller (v1), or for the one tree (v2), where it is in no cgroup of its
/// own: the net's own is byoc-net…, the container's another byoc-….
fn outside_its_cgroup(ran: &Ran) -> Vec<&str> {
    let own = |line: &str| {
        line.split('/').any(|part| part.starts_with("byoc-") && !part.starts_with("byoc-net"))
    };
    let limited = |line: &str| {
        let controllers = line.split(':').nth(1).unwrap_or_default();
        (v2() && line.starts_with("0::"))
            || controllers.split(',').any(|c| c == "memory" || c == "pids")
    };
    ran.output().lines().filter(|line| limited(line) && !own(line)).collect()
}

/// The trees of this machine: v2 has one, `0::`, alone.
fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn limits_enforced(program: &Path) -> Result<(), Failure> {
    let ran =
        run(program, &["run", "--memory", "100m", "--pids", "20", "cat", "/proc/self/cgroup"])?;
    let outside = outside_its_cgroup(&ran);
    ran.expect(
        outside.is_empty() && !ran.output().is_empty(),
        "the command in a cgroup byoc-… of the container's, in every tree with the memory or \
         pids controller",
        &format!(
            "no cgroup of the container's in {}: create_from makes one in each tree that \
             trees::find gives (v1: a tree per controller)",
            outside.join(", ")
        ),
    )?;
    let ran = run(program, &["run", "--pids", "20", "sh", "-c", FORKS])?;
    ran.expect(
        started(&ran) == 18 && ran.output().contains("can't fork"),
        "18 sleeps started (with init and the shell, 20 processes), then \"can't fork\"",
        "pids.max is not written, or not where the container runs: write the limits into the \
         container's cgroup before it starts",
    )?;
    // Three seconds at most: unlimited, stress then ends, and says "successful run".
    let stress = "run --memory 100m -- stress --vm-bytes 200m --vm-keep -m 1 --timeout 3";
    let stress: Vec<&str> = stress.split(' ').collect();
    let ran = run(program, &stress)?;
    ran.expect(
        ran.outcome.status != 0 && !ran.output().contains("successful run"),
        "stress killed: 200 MiB does not fit in 100 MiB",
        match v2() {
            true => {
                "the memory limit is not written (memory.max), or swap not turned off \
                     (memory.swap.max 0)"
            }
            false => {
                "the memory limit is not written (memory.limit_in_bytes), or swap not \
                      turned off"
            }
        },
    )?;
    // A quarter of a CPU: a busy loop's share of one, which a busy machine can only lower.
    let ran = run(program, &["run", "--cpus", "0.25", "sh", "-c", common::BUSY_LOOP])?;
    let quota = "cpu.max is \"QUOTA PERIOD\" in microseconds, a period of 100000 and a \
                 quarter of it for 0.25 CPUs (v1: cpu.cfs_quota_us and cpu.cfs_period_us)";
    ran.expect(
        ran.outcome.status == 0,
        "exit status 0: a quarter of a CPU set, the loop ran",
        &format!("the CPU limit was refused (its error is above): {quota}"),
    )?;
    let share = common::cpu_and_wall_time(ran.output()).map(|(cpu, real)| cpu / real);
    ran.expect(
        share.is_some_and(|share| share < 0.35),
        "less than 0.35 of a CPU for the loop, its CPU time over its wall time",
        &format!(
            "the loop had {:.2} of a CPU with --cpus 0.25: the quota is wrong, {quota}",
            share.unwrap_or(f64::NAN)
        ),
    )
}

const JOINS_ITS_CGROUP: Stage = Stage {
    id: StageId::of("5.2"),
    name: "the container joins its cgroup",
    read: "chapter 5, Move 3: join (book/src/step5-1-cgroup.md#move-3-join)",
    check: joins_its_cgroup,
    without_root: WithoutRoot::None(A_CGROUP),
};

fn joins_its_cgroup(program: &Path) -> Result<(), Failure> {
    let limits = ["run", "--memory", "100m", "--pids", "20"];
    let ran = run(program, &[&limits[..], &["cat", "/proc/self/cgroup"]].concat())?;
    let outside = outside_its_cgroup(&ran);
    let hint = if ran.outcome.status != 0 {
        "the child could not join (its error is above): join writes \"0\" into the file \
         cgroup.procs of each directory"
            .to_string()
    } else {
        format!(
            "the command is in {}: the child must join every directory of the container's \
             cgroup, one in each tree (write 0 into its cgroup.procs), before it execs anything",
            outside.join(", ")
        )
    };
    ran.expect(
        ran.outcome.status == 0 && outside.is_empty(),
        "the command in the container's cgroup, byoc-…, in every tree with memory or pids",
        &hint,
    )?;
    // The limits hold, both: the pids limit is not in the memory tree, on v1.
    let ran = run(program, &[&limits[..], &["sh", "-c", FORKS]].concat())?;
    ran.expect(
        started(&ran) == 18,
        "18 sleeps started, with --memory and --pids both set",
        "the pids limit does not hold with a memory limit beside it: the child must join every \
         directory of its cgroup, the pids tree's too on v1",
    )
}

const REPORT_AND_REMOVE: Stage = Stage {
    id: StageId::of("5.3"),
    name: "report the OOM kill, remove the cgroup",
    read: "chapter 5, Move 4: report (book/src/step5-1-cgroup.md#move-4-report), and Move 5: remove (book/src/step5-1-cgroup.md#move-5-remove)",
    check: report_and_remove,
    without_root: WithoutRoot::None(A_CGROUP),
};

/// Whether `line` reports an OOM kill: it says that the OOM killer killed, and whom (a count,
/// or the container), and it is no error or warning, such as an rmdir refused, whose path may
/// name the memory controller.
pub fn says_an_oom_kill(line: &str) -> bool {
    let line = line.to_lowercase();
    let whom = line.chars().any(|c| c.is_ascii_digit()) || line.contains("container");
    let complaint = ["error", "warning", "cannot", "failed"].iter().any(|word| line.contains(word));
    line.contains("oom") && line.contains("kill") && whom && !complaint && !line.contains("/sys/")
}

fn report_and_remove(program: &Path) -> Result<(), Failure> {
    // --pids too: a cgroup in more than one tree on v1, each of which must go.
    let stress = "run --memory 100m --pids 64 -- stress --vm-bytes 200m --vm-keep -m 1";
    let stress: Vec<&str> = stress.split(' ').collect();
    let ran = run(program, &stress)?;
    let said =
        ran.output().lines().filter(|line| !line.starts_with("stress:")).any(says_an_oom_kill);
    ran.expect(
        said,
        "a line saying that the OOM killer killed in the container, and whom",
        "no report: after the command ended, and before the cgroup is removed (the counters go \
         with it), read the memory controller's events, oom_kill, and say whom it killed",
    )?;
    let ran = run(program, &["run", "--memory", "100m", "--pids", "64", "true"])?;
    ran.expect(
        ran.outcome.status == 0 && !ran.output().lines().any(says_an_oom_kill),
        "nothing said: true fits in 100 MiB",
        "a report of an OOM kill that did not happen: report only when oom_kill counts one",
    )
}
