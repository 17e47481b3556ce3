//! The justfile's modes (book: chapter 2, Without root: Running it). As root, `just stepN`
//! runs the step as root; a user with sudo gets root through it, as the book's transcripts
//! are; a user without sudo, or who asks with `ROOTLESS=1`, runs the step rootless. Each run
//! first says which, in one line on stderr, and why.
//!
//! The learner here is user `nobody`, in a checkout of its own (`RootlessCheckout`: the step
//! built, rootfs/ its own) with the project's justfile, `just` itself, and a `cargo` that
//! builds nothing, since the steps are built already (root's toolchain is not `nobody`'s).
//! For the learner with sudo, a stand-in `sudo` on the PATH says what it was asked to run,
//! then runs it: a test cannot hand `nobody` real root.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{RootlessCheckout, Run, STEP2, STEP5, Step};

/// A stand-in for `cargo`: the checkout's steps are built already, and the workshop's checker
/// is `checker` beside it, as `cargo test --no-run --message-format=json` would name it.
const CARGO: &str = r#"#!/bin/sh
case "$*" in *--message-format=json*)
    echo "{\"target\":{\"name\":\"workshop\"},\"executable\":\"$(dirname "$0")/checker\"}" ;;
esac
"#;

/// A stand-in for the workshop's checker, which says how it was run.
const CHECKER: &str = "#!/bin/sh\necho \"checker: $*, as user $(id -u)\"\n";

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

/// `just ARGS…` as `nobody` in a checkout of `step`, with `sudo` on the PATH or not, and
/// the environment variables `env`.
fn just_as_nobody(step: &Step, sudo: bool, env: &[(&str, &str)], args: &[&str]) -> Run {
    just_as_nobody_in(step, |_| {}, sudo, env, args)
}

/// The same, the checkout first made ready by `prepare`.
fn just_as_nobody_in(
    step: &Step,
    prepare: impl Fn(&Path),
    sudo: bool,
    env: &[(&str, &str)],
    args: &[&str],
) -> Run {
    let host = common::HostState::now();
    let checkout = RootlessCheckout::new(step);
    prepare(&checkout.dir);
    let bin = checkout.dir.join("bin");
    fs::create_dir(&bin).unwrap();
    program(&bin, "just", &fs::read(just()).unwrap());
    program(&bin, "cargo", CARGO.as_bytes());
    program(&bin, "checker", CHECKER.as_bytes());
    if sudo {
        program(&bin, "sudo", SUDO.as_bytes());
    }
    fs::copy(Path::new(common::PROJECT).join("justfile"), checkout.dir.join("justfile")).unwrap();
    let mut setpriv = common::as_a_learner(Command::new("setpriv"));
    setpriv.args(common::AS_NOBODY).arg(bin.join("just")).args(args);
    setpriv.current_dir(&checkout.dir).env("HOME", "/").env_remove("ROOTLESS");
    setpriv.env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    setpriv.envs(env.iter().copied());
    let shown = env.iter().map(|(name, value)| format!("{name}={value} ")).collect::<String>();
    let run = common::transcript_of(setpriv, &format!("{shown}just {}", common::shell_words(args)));
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
        false,
        &[],
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
    let run = just_as_nobody(&STEP2, true, &[], &args);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("sudo", run);
    let run = just_as_nobody(&STEP2, true, &[("ROOTLESS", "1")], &args);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("sudo_rootless_asked", run);
}

/// Rootless on a machine without cgroup v2 (this one's memory controller is on v1), step 5
/// runs the step itself, which refuses limits with the way out; without limits it runs.
#[test]
fn rootless_step5_without_cgroup_v2_refuses_limits() {
    common::require_root();
    let run = just_as_nobody(&STEP5, false, &[], &["step5", "run", "--memory", "100m", "true"]);
    assert_eq!(run.status, 1, "{}", run.transcript);
    assert!(run.output.contains("rootless, cgroup limits need"), "{}", run.transcript);
    let run = just_as_nobody(&STEP5, false, &[], &["step5", "run", "sh", "-c", "exit 4"]);
    assert_eq!(run.status, 4, "{}", run.transcript);
}

/// The workshop runs without root too (book: Workshop, Without root): `just check` runs the
/// checker as the learner, and `just yours` runs their step in a safety net of their own.
#[test]
fn without_sudo_the_workshop_runs_rootless() {
    common::require_root();
    let run = just_as_nobody(&STEP5, false, &[], &["check", "2"]);
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
    let run = just_as_nobody_in(&STEP5, learners_step, false, &[], &args);
    assert_eq!(run.status, 0, "{}", run.transcript);
    assert_transcript!("no_sudo_yours", run);
}

/// The tests need root whatever the mode: without sudo, `just test` says so.
#[test]
fn without_sudo_just_test_says_it_needs_root() {
    common::require_root();
    let run = just_as_nobody(&STEP5, false, &[], &["test"]);
    assert_eq!(run.status, 1, "{}", run.transcript);
    assert_transcript!("no_sudo_test", run);
}
