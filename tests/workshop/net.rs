//! Run a learner's step inside the safety net (`tests/tools/safety-net.sh`): a throwaway set of
//! namespaces, a cgroup (as root) and a time limit that stand for the host, so that a step that
//! is still wrong harms the stand-in, never the host, and the harm is seen.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common;

/// What a run in the net showed.
pub struct Outcome {
    /// The program's exit status, 128+N for signal N, as a shell says it.
    pub status: i32,
    /// Its standard output and error, on one pipe, as a terminal shows them.
    pub output: String,
    /// What it did to the stand-in for the host, one sentence each.
    pub harm: Vec<String>,
}

/// Run `program ARGS…` from the project's directory in the net, for at most `limit`: as root,
/// in a stand-in that root makes; without root, in one made in a user namespace of the
/// caller's, where the program is that namespace's root. A step 1 runs on the host, as
/// chapter 1 shows it: it makes no namespace, and can harm nothing its caller could not.
pub fn run(program: &Path, args: &[&str], limit: Duration) -> Outcome {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let report = common::scratch_dir(&format!("net-{}", RUNS.fetch_add(1, Ordering::Relaxed)));
    let script = Path::new(common::PROJECT).join("tests/tools/safety-net.sh");
    let mut command = common::as_a_learner(Command::new(script));
    command.arg(&report).arg(seconds(limit)).arg(program).args(args);
    if step_of(program, args) == Some(1) {
        command.env("BYOC_NET", "off");
    }
    let output = common::transcript_of(command, "the safety net").output;
    let text = fs::read_to_string(&report).unwrap_or_default();
    let _ = fs::remove_file(&report);
    let mut status = -1;
    let mut harm = Vec::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("status ") {
            status = value.parse().unwrap_or(-1);
        } else if let Some(what) = line.strip_prefix("harm ") {
            harm.push(what.to_string());
        }
    }
    Outcome { status, output: one_line_for_an_abort(&output), harm }
}

/// What a panic prints first, with the program's own hook (color-eyre's).
const PANICKED: &str = "The application panicked (crashed).\n";

/// What Rust prints when a panic reaches a function that cannot unwind, such as clone(2)'s
/// callback: a second report, of its own, then it aborts the process.
const CANNOT_UNWIND: &str = "Message:  panic in a function that cannot unwind";

/// `output` with a panic inside clone(2)'s callback said in one line, where the learner's code
/// panicked and with what message (a `todo!()`'s, say, which says what to write): Rust's
/// second report, of a function that cannot unwind, says nothing of theirs.
pub fn one_line_for_an_abort(output: &str) -> String {
    let Some(abort) = output.find(CANNOT_UNWIND) else { return output.to_string() };
    let Some(first) = output.find(PANICKED) else { return output.to_string() };
    let field = |name: &str| {
        output[first..abort].lines().find_map(|line| line.strip_prefix(name)).map(str::trim)
    };
    let (Some(message), Some(location)) = (field("Message:"), field("Location:")) else {
        return output.to_string();
    };
    let last = "thread caused non-unwinding panic. aborting.\n";
    let end = output[abort..].find(last).map_or(output.len(), |at| abort + at + last.len());
    format!(
        "{}{location}: {message} [in the child that clone(2) started, where a panic aborts]\n{}",
        &output[..first],
        &output[end..]
    )
}

/// Run `program ARGS…` from the project's directory as the caller, outside the net, for at
/// most `limit`: for a learner without root, whose step then makes a user namespace of its
/// own, and can change nothing of the host's (book: chapter 2, Without root).
pub fn run_as_caller(program: &Path, args: &[&str], limit: Duration) -> Outcome {
    let mut command = common::as_a_learner(Command::new("timeout"));
    command.args(["--kill-after=2", &seconds(limit)]).arg(program).args(args);
    let run = common::transcript_of(command, "your step");
    Outcome { status: run.status, output: one_line_for_an_abort(&run.output), harm: Vec::new() }
}

/// The step that `program` is, the first digit of its name (step1, step1-lent-1-1,
/// mistake-1-2-1), or of the program's that setpriv runs for it.
fn step_of(program: &Path, args: &[&str]) -> Option<u32> {
    let program = match program.file_name().is_some_and(|name| name == "setpriv") {
        true => Path::new(args.iter().find(|arg| !arg.starts_with("--"))?),
        false => program,
    };
    program.file_name()?.to_string_lossy().chars().find_map(|c| c.to_digit(10))
}

fn seconds(limit: Duration) -> String {
    limit.as_secs().max(1).to_string()
}
