//! The justfile's modes (book: chapter 2, Without root: Running it). As root, `just stepN`
//! runs the step as root; a user with sudo gets root through it, as the book's transcripts
//! are; a user without sudo, or who asks with `ROOTLESS=1`, runs the step rootless. Each run
//! first says which, in one line on stderr, and why.
//!
//! The learner here is user `nobody`, in a checkout of its own (`RootlessCheckout`: the step
//! built, rootfs/ its own) with the project's justfile and its scripts, `just` itself, and a
//! `cargo` that builds nothing, since the steps are built already (root's toolchain is not
//! `nobody`'s).
//! For the learner with sudo, a stand-in `sudo` on the PATH says what it was asked to run,
//! then runs it: a test cannot hand `nobody` real root.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{RootlessCheckout, Run, STEP2, STEP5, Step};

/// A stand-in for `cargo`: the checkout's steps are built already, and the workshop's checker
/// is `checker` beside it, as `cargo test --no-run --message-format=json` would name it.
const CARGO: &str = r#"#!/bin/sh
case "$*" in *--message-format=json*)
    echo "{\"target\":{\"name\":\"workshop\"},\"executable\":\"$(dirname "$0")/checker\"}" ;;
esac
"#;

/// A stand-in for the workshop's checker, which says how it was run; asked for the program
/// that `just yours N` runs, it names the learner's own build, as it does when no stage is
/// still `todo!()`.
const CHECKER: &str = "#!/bin/sh
case $1 in
yours) echo \"$PWD/target/yours/debug/step$2\" ;;
*) echo \"checker: $*, as user $(id -u)\" ;;
esac
";

/// A stand-in for `sudo`, which says what it was asked to run and runs it as the caller.
const SUDO: &str = "#!/bin/sh\necho \"(sudo $*)\" >&2\nexec \"$@\"\n";

/// `just` itself, as the PATH of the test finds it.
fn just() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("just"))
        .find(|just| just.is_file())
        .expect("just is on the PATH: the README's test command installs it")
}

/// Put an executable `name` with `text` in `dir`.
fn program(dir: &Path, name: &str, text: &[u8]) {
    fs::write(dir.join(name), text).unwrap();
    fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o755)).unwrap();
}

/// How a learner's machine differs from this one.
#[derive(Default)]
struct Machine<'a> {
    /// `sudo` on the PATH (the stand-in).
    sudo: bool,
    /// Environment variables the learner sets.
    env: &'a [(&'a str, &'a str)],
    /// Pure cgroup v2, as most laptops have it: /sys/fs/cgroup/cgroup.controllers, in a mount
    /// namespace of the run's own (on a tmpfs there: nothing of this machine's changes).
    cgroup_v2: bool,
    /// What else the checkout holds, made before the run.
    prepare: Option<&'a dyn Fn(&Path)>,
}

/// The scripts that the recipes these tests run call, copied beside the justfile (rootfs/'s
/// build.sh comes with the copy of rootfs/).
const SCRIPTS: [&str; 2] = ["tests/workshop/check.sh", "tests/workshop/yours.sh"];

/// `as_nobody_after` script: a pure cgroup v2 machine's /sys/fs/cgroup.
const CGROUP_V2: &str = "mount -t tmpfs tmpfs /sys/fs/cgroup
echo 'cpu memory pids' >/sys/fs/cgroup/cgroup.controllers";

/// `just ARGS…` as `nobody` in a checkout of `step`, on `machine`.
fn just_as_nobody(step: &Step, machine: Machine, args: &[&str]) -> Run {
    let host = common::HostState::now();
    let checkout = RootlessCheckout::new(step);
    let bin = checkout.dir.join("bin");
    fs::create_dir(&bin).unwrap();
    if let Some(prepare) = machine.prepare {
        prepare(&checkout.dir);
    }
    program(&bin, "just", &fs::read(just()).unwrap());
    program(&bin, "cargo", CARGO.as_bytes());
    program(&bin, "checker", CHECKER.as_bytes());
    if machine.sudo {
        program(&bin, "sudo", SUDO.as_bytes());
    }
    fs::copy(Path::new(common::PROJECT).join("justfile"), checkout.dir.join("justfile")).unwrap();
    for script in SCRIPTS {
        fs::create_dir_all(checkout.dir.join(script).parent().unwrap()).unwrap();
        fs::copy(Path::new(common::PROJECT).join(script), checkout.dir.join(script)).unwrap();
    }
    let mut command = common::as_nobody_after(if machine.cgroup_v2 { CGROUP_V2 } else { ":" });
    command.arg(bin.join("just")).args(args);
    command.current_dir(&checkout.dir).env("HOME", "/").env_remove("ROOTLESS");
    command.env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    command.envs(machine.env.iter().copied());
    let env = machine.env.iter().map(|(name, value)| format!("{name}={value} "));
    let shown = format!("{}just {}", env.collect::<String>(), common::shell_words(args));
    let run = common::transcript_of(command, &shown);
    drop(checkout);
    host.assert_unchanged("just");
    run
}

/// Without sudo, the steps run rootless, and say so.
#[test]
fn without_sudo_the_steps_run_rootless() {
    common::require_root();
    let run = just_as_nobody(
        &STEP2,
        Machine::default(),
        &["step2", "run", "--hostname", "box", "sh", "-c", "hostname; id -u"],
    );
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("no_sudo_rootless", run);
}

/// With sudo at hand, `just` runs the steps through it, as the book shows them; `ROOTLESS=1`
/// asks for a rootless run instead.
#[test]
fn with_sudo_the_steps_run_through_it_unless_rootless_is_asked() {
    common::require_root();
    let args = ["step2", "run", "true"];
    let run = just_as_nobody(&STEP2, Machine { sudo: true, ..Machine::default() }, &args);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("sudo", run);
    let run = just_as_nobody(
        &STEP2,
        Machine { sudo: true, env: &[("ROOTLESS", "1")], ..Machine::default() },
        &args,
    );
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("sudo_rootless_asked", run);
}

/// Rootless on a machine without cgroup v2 (this one's memory controller is on v1), step 5
/// runs the step itself, which refuses limits with the way out; without limits it runs.
#[test]
fn rootless_step5_without_cgroup_v2_refuses_limits() {
    common::require_root();
    let run =
        just_as_nobody(&STEP5, Machine::default(), &["step5", "run", "--memory", "100m", "true"]);
    assert_eq!(run.status, 1, "{}", run.transcript);
    assert!(run.output.contains("rootless, cgroup limits need"), "{}", run.transcript);
    let run = just_as_nobody(&STEP5, Machine::default(), &["step5", "run", "sh", "-c", "exit 4"]);
    assert_eq!(run.status, 4, "{}", run.transcript);
}

/// The workshop runs without root too (book: Workshop, Without root): `just check` runs the
/// checker as the learner, and `just yours` runs their step in a safety net of their own.
#[test]
fn without_sudo_the_workshop_runs_rootless() {
    common::require_root();
    let run = just_as_nobody(&STEP5, Machine::default(), &["check", "2"]);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("no_sudo_check", run);
    let learners_step = |dir: &Path| {
        let project = Path::new(common::PROJECT);
        fs::create_dir_all(dir.join("steps/yours/step2")).unwrap();
        fs::write(dir.join("steps/yours/step2/main.rs"), "").unwrap();
        fs::set_permissions(dir.join("steps/yours"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::copy(project.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        fs::create_dir_all(dir.join("tests/tools")).unwrap();
        let net = "tests/tools/safety-net.sh";
        fs::copy(project.join(net), dir.join(net)).unwrap();
        fs::create_dir_all(dir.join("target/yours/debug")).unwrap();
        fs::copy(STEP2.exe, dir.join("target/yours/debug/step2")).unwrap();
    };
    let args = ["yours", "2", "run", "--hostname", "box", "sh", "-c", "hostname; id -u"];
    let run = just_as_nobody(
        &STEP5,
        Machine { prepare: Some(&learners_step), ..Machine::default() },
        &args,
    );
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("no_sudo_yours", run);
}

/// The tests need root whatever the mode: without sudo, `just test` says so.
#[test]
fn without_sudo_just_test_says_it_needs_root() {
    common::require_root();
    let run = just_as_nobody(&STEP5, Machine::default(), &["test"]);
    assert_eq!(run.status, 1, "{}", run.transcript);
    assert_transcript!("no_sudo_test", run);
}

/// A stand-in for `systemd-run` where the learner has a systemd user manager, as a desktop
/// session has: it says what it was asked to run (but for the justfile's probe, `true`), then
/// runs the command after its options, as the scope would.
const SYSTEMD_RUN: &str = r#"#!/bin/sh
[ "$*" = "--user --scope --quiet true" ] || echo "(systemd-run $*)" >&2
while [ $# -gt 0 ]; do case $1 in -p) shift 2 ;; -*) shift ;; *) break ;; esac; done
exec "$@"
"#;

/// A stand-in for `systemd-run` with no user manager to talk to, as on a bare server.
const SYSTEMD_RUN_NO_MANAGER: &str =
    "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n";

/// Rootless on cgroup v2 (book: chapter 5), step 5 runs in a scope that systemd makes, its
/// cgroup delegated to the learner, when they have a systemd user manager; without one, the
/// step runs as is, which needs no cgroup without limits. The stand-in shows the justfile's
/// choice; that a rootless step 5 limits and OOM-kills in a cgroup delegated the way systemd
/// delegates it (chowned to the user), the VM test shows.
#[test]
fn rootless_step5_on_cgroup_v2_asks_systemd_for_a_delegated_scope() {
    common::require_root();
    let args = ["step5", "run", "sh", "-c", "exit 6"];
    let manager = |dir: &Path| program(&dir.join("bin"), "systemd-run", SYSTEMD_RUN.as_bytes());
    let machine = Machine { cgroup_v2: true, prepare: Some(&manager), ..Machine::default() };
    let run = just_as_nobody(&STEP5, machine, &args);
    assert_eq!(run.status, 6, "{}", run.transcript);
    assert_transcript!("cgroup_v2_systemd_scope", run);

    let none = |dir: &Path| {
        program(&dir.join("bin"), "systemd-run", SYSTEMD_RUN_NO_MANAGER.as_bytes());
    };
    let machine = Machine { cgroup_v2: true, prepare: Some(&none), ..Machine::default() };
    let run = just_as_nobody(&STEP5, machine, &args);
    assert_eq!(run.status, 6, "{}", run.transcript);
    assert!(!run.output.contains("systemd-run"), "{}", run.transcript);
}
