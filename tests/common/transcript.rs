//! A run's transcript, what the terminal shows: the command line as typed, stdout and stderr
//! interleaved on one pipe, and the exit status; and the snapshots that record them, which
//! the book includes as its "Run it" blocks.

use std::fs;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use super::project::PROJECT;

/// What a learner sees after a run.
pub struct Run {
    /// `$ just stepN ARGS…`, then the output, then `[exit status: N]`.
    pub transcript: String,
    /// The output alone.
    pub output: String,
    pub status: i32,
}

/// Run `command`, its output and errors on one pipe as a terminal shows them, and record
/// `$ SHOWN`, the output, and the exit status.
pub fn transcript_of(mut command: Command, shown: &str) -> Run {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut child = command
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {shown}: {error}"));
    drop(command); // our copies of the pipe's write end, so that we see its end
    // Lossy: a learner's program, in the workshop's checks, may write anything.
    let mut output = Vec::new();
    reader.read_to_end(&mut output).unwrap();
    let output = String::from_utf8_lossy(&output).into_owned();
    // As a shell says it: 128+N for a program that signal N killed.
    let status = child.wait().unwrap();
    let status = status.code().unwrap_or_else(|| 128 + status.signal().unwrap());
    let transcript = format!("$ {shown}\n{output}[exit status: {status}]");
    Run { transcript, output, status }
}

/// The body of `tests/snapshots/NAME.snap`: a transcript as the book shows it,
/// redacted, without the newline that insta ends it with.
pub fn snapshot_body(name: &str) -> String {
    let path = Path::new(PROJECT).join("tests/snapshots").join(format!("{name}.snap"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // After the YAML header, `---`…`---`.
    let body = text.splitn(3, "---\n").nth(2).expect("an insta snapshot");
    body.strip_suffix('\n').unwrap_or(body).to_string()
}

/// Snapshot a run's transcript, redacted.
#[macro_export]
macro_rules! assert_transcript {
    ($name:expr, $run:expr) => {
        insta::assert_snapshot!($name, $crate::common::redact(&$run.transcript))
    };
}

/// The arguments as a learner would type them in a shell.
pub fn shell_words(args: &[&str]) -> String {
    let quote = |arg: &&str| {
        let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c);
        if !arg.is_empty() && arg.chars().all(plain) {
            arg.to_string()
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}
