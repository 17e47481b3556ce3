//! Two terminals, or twenty: any number of runs of any step from one checkout
//! at the same time, and a long-running container of each step that is not
//! disturbed by the others starting and stopping around it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};

use common::{STEPS, Step};

/// How many runs of each step start at once.
const AT_ONCE: usize = 16;

/// The steps with namespaces, each with the arguments that make its container
/// its own: step 5 with limits, so that it makes cgroups.
fn steps() -> impl Iterator<Item = (Step, &'static [&'static str])> {
    common::require_rootfs();
    let limits: &'static [&'static str] = &["--memory", "50m", "--pids", "20"];
    STEPS.into_iter().skip(1).map(move |step| (step, if step.number == 5 { limits } else { &[] }))
}

/// What a container of `step` should see of itself, and still see after other
/// containers have come and gone: its hostname, its root, and in step 3 the
/// host's old root at /oldrootfs.
fn look_around(step: &Step) -> &'static str {
    match step.number {
        2 => "hostname",
        3 => "hostname; ls /bin/busybox; head -c 12 /oldrootfs/etc/os-release; echo",
        _ => "hostname; ls /bin/busybox; ls -A /oldrootfs; cat /proc/1/comm",
    }
}

/// Start `step run … sh -c SCRIPT` with its output on a pipe.
fn start(step: &Step, extra: &[&str], script: &str, stdin: Stdio) -> Child {
    let args = [&["run", "--hostname", "box"], extra, &["sh", "-c", script]].concat();
    let mut command = common::as_a_learner(std::process::Command::new(step.exe));
    command.args(&args).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.spawn().unwrap_or_else(|error| panic!("cannot start {}: {error}", step.exe))
}

#[test]
fn sixteen_runs_of_each_step_at_once_beside_long_running_ones() {
    let host = common::HostState::now();
    // One long-running container per step: it looks around, says so, and waits for a line.
    let mut long_running = Vec::new();
    for (step, extra) in steps() {
        let script =
            format!("{}; echo ready; read line; {}", look_around(&step), look_around(&step));
        let mut container = start(&step, extra, &script, Stdio::piped());
        let mut output = BufReader::new(container.stdout.take().unwrap()).lines();
        let mut before = Vec::new();
        for line in output.by_ref() {
            let line = line.unwrap();
            if line == "ready" {
                break;
            }
            before.push(line);
        }
        assert!(!before.is_empty(), "{} never said ready", step.name);
        long_running.push((step, container, output, before));
    }

    // Then sixteen of each step at once, each looking around too.
    let runs: Vec<(Step, Child)> = steps()
        .flat_map(|(step, extra)| {
            (0..AT_ONCE)
                .map(move |_| (step, start(&step, extra, look_around(&step), Stdio::null())))
        })
        .collect();
    let mut failed = Vec::new();
    for (step, run) in runs {
        let output = run.wait_with_output().unwrap();
        if !output.status.success() || !output.stdout.starts_with(b"box\n") {
            failed.push(format!(
                "{}: {}\n{}{}",
                step.name,
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} runs failed:\n{}",
        failed.len(),
        4 * AT_ONCE,
        failed.join("\n")
    );

    // The long-running ones see what they saw before, and end well.
    for (step, mut container, output, before) in long_running {
        container.stdin.take().unwrap().write_all(b"go on\n").unwrap();
        let after: Vec<String> = output.map(Result::unwrap).collect();
        assert_eq!(after, before, "the long-running {} container's view changed", step.name);
        assert!(container.wait().unwrap().success(), "the long-running {} failed", step.name);
    }
    host.assert_unchanged("the concurrent runs");
}
