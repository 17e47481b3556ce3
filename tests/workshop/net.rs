//! Run a learner's step inside the safety net (`tests/tools/safety-net.sh`): a throwaway set of
//! namespaces, a cgroup (as root) and a time limit that stand for the host, so that a step that
//! is still wrong harms the stand-in, never the host, and the harm is seen.

use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
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
/// caller's, where the program is that namespace's root.
pub fn run(program: &Path, args: &[&str], limit: Duration) -> Outcome {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let report = common::scratch_dir(&format!("net-{}", RUNS.fetch_add(1, Ordering::Relaxed)));
    let script = Path::new(common::PROJECT).join("tests/tools/safety-net.sh");
    let mut command = common::as_a_learner(Command::new(script));
    command.arg(&report).arg(seconds(limit)).arg(program).args(args);
    let (_, output) = output_of(command);
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
    Outcome { status, output, harm }
}

/// Run `program ARGS…` from the project's directory as the caller, outside the net, for at
/// most `limit`: for a learner without root, whose step then makes a user namespace of its
/// own, and can change nothing of the host's (book: chapter 2, Without root).
pub fn run_as_caller(program: &Path, args: &[&str], limit: Duration) -> Outcome {
    let mut command = common::as_a_learner(Command::new("timeout"));
    command.args(["--kill-after=2", &seconds(limit)]).arg(program).args(args);
    let (status, output) = output_of(command);
    Outcome { status, output, harm: Vec::new() }
}

fn seconds(limit: Duration) -> String {
    limit.as_secs().max(1).to_string()
}

/// Run `command` with no input, its output and errors on one pipe; its status, as a shell
/// says it (128+N for signal N), and what it wrote.
fn output_of(mut command: Command) -> (i32, String) {
    let (mut reader, writer) = std::io::pipe().unwrap();
    command.stdin(Stdio::null()).stdout(writer.try_clone().unwrap()).stderr(writer);
    let mut child = command.spawn().unwrap_or_else(|error| panic!("{command:?}: {error}"));
    drop(command); // our copies of the pipe's write end, so that we see its end
    let mut output = Vec::new();
    reader.read_to_end(&mut output).unwrap();
    let status = child.wait().unwrap();
    let status = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    (status, String::from_utf8_lossy(&output).into_owned())
}
