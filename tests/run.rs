//! What every step does alike: run a command, narrate with `-v`, hand back the
//! command's exit status, and refuse bad input with a clear message.

mod common;

use std::fs;
use std::path::Path;

use common::STEPS;

#[test]
fn echo_hello() {
    for step in STEPS {
        let run = step.run(&["run", "echo", "hello"]);
        assert_eq!((run.output.as_str(), run.status), ("hello\n", 0), "{}", run.transcript);
        assert_transcript!(format!("{}_echo_hello", step.name), run);
    }
}

#[test]
fn verbose_narrates_each_system_call() {
    // `=> name(arguments) = result  # why`, or `=> name(arguments) …` for a call that
    // starts a process or a program, which speaks next (book: chapter 1, What -v shows).
    let call = regex::Regex::new(r"^=> [a-z_0-9]+\(.*\) (= \S.*|…)$").unwrap();
    for step in STEPS {
        // Rootless, the narration has the user namespace's lines too: rootless.rs's
        // step2_verbose shows them.
        let run = step.run_as_root(&["run", "-v", "echo", "hello"]);
        assert!(run.output.contains("=> clone("), "{}", run.transcript);
        for line in run.output.lines().filter(|line| *line != "hello") {
            assert!(call.is_match(line), "not a call and its result: {line}\n{}", run.transcript);
        }
        assert_transcript!(format!("{}_verbose", step.name), run);
    }
}

/// The narration is made from the values each call is given (`narrate!`, or
/// `narrate::Call::new` with each argument shown from its value): no string in the
/// steps spells a call out by hand, `"mount(NULL, …)"`, which could say what the code
/// did not do.
#[test]
fn no_narration_is_written_by_hand() {
    let literal = regex::Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap();
    let spelled = regex::Regex::new(r"\b[a-z_0-9]+\(").unwrap();
    let steps = Path::new(common::PROJECT).join("steps");
    let mut sources = Vec::new();
    let mut dirs = vec![steps];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            match entry.path() {
                path if path.is_dir() => dirs.push(path),
                path if path.extension().is_some_and(|ext| ext == "rs") => sources.push(path),
                _ => {}
            }
        }
    }
    let mut narrated = 0;
    for source in sources {
        let text = fs::read_to_string(&source).unwrap();
        for (at, _) in text.match_indices("Call::new(").chain(text.match_indices(".because(")) {
            // The arguments, to the parenthesis that closes them.
            let mut depth = 0;
            let end = text[at..]
                .char_indices()
                .find_map(|(i, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    (c == ')' && depth == 0).then_some(at + i)
                })
                .unwrap();
            let arguments = &text[at..end];
            for string in literal.find_iter(arguments) {
                assert!(
                    !spelled.is_match(string.as_str()),
                    "{}: a call spelled out by hand, {}, in {arguments}",
                    source.display(),
                    string.as_str()
                );
            }
            narrated += 1;
        }
        assert!(!text.contains("narrate(verbose"), "{}: the old narrate()", source.display());
    }
    assert!(narrated > 20, "only {narrated} narrations found: has the helper moved?");
}

#[test]
fn exit_status_is_the_commands() {
    for step in STEPS {
        let run = step.run(&["run", "sh", "-c", "exit 3"]);
        assert_eq!(run.status, 3, "{}", run.transcript);
        assert_transcript!(format!("{}_exit_3", step.name), run);
    }
}

/// 128+9 when SIGKILL kills the command. In steps 2 and 3 the shell is PID 1
/// of its namespace, and the kernel drops a signal that PID 1 has no handler
/// for, even SIGKILL: the shell survives `kill -9 $$` and exits 0 (book:
/// chapter 2). From step 4 on our init is PID 1, and the shell is killed.
#[test]
fn killed_by_a_signal() {
    for step in STEPS {
        let run = step.run(&["run", "sh", "-c", "kill -9 $$"]);
        let shell_is_pid_1 = (2..=3).contains(&step.number);
        let expected = if shell_is_pid_1 { 0 } else { 137 };
        assert_eq!(run.status, expected, "{}", run.transcript);
        assert_transcript!(format!("{}_kill_9", step.name), run);
    }
}

#[test]
fn command_not_found_is_127() {
    for step in STEPS {
        let run = step.run(&["run", "no-such-command"]);
        assert_eq!(run.status, 127, "{}", run.transcript);
        assert!(run.output.contains("\"no-such-command\""), "{}", run.transcript);
        assert_transcript!(format!("{}_not_found", step.name), run);
    }
}

#[test]
fn not_executable_is_126() {
    for step in STEPS {
        let run = step.run(&["run", "/etc/passwd"]);
        assert_eq!(run.status, 126, "{}", run.transcript);
        assert_transcript!(format!("{}_not_executable", step.name), run);
    }
}

#[test]
fn missing_command_is_a_usage_error() {
    for step in STEPS {
        let run = step.run(&["run"]);
        assert_eq!(run.status, 2, "{}", run.transcript);
        assert_transcript!(format!("{}_missing_command", step.name), run);
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    for step in STEPS {
        let run = step.run(&["run", "--no-such-flag", "true"]);
        assert_eq!(run.status, 2, "{}", run.transcript);
        assert_transcript!(format!("{}_unknown_flag", step.name), run);
    }
}

#[test]
fn help_says_what_the_step_adds() {
    for step in STEPS {
        let run = step.run(&["--help"]);
        assert_eq!(run.status, 0, "{}", run.transcript);
        assert!(run.output.contains("(book: chapter"), "{}", run.transcript);
        assert!(
            !run.output.contains("\n  child"),
            "the internal subcommand shows:\n{}",
            run.transcript
        );
        assert_transcript!(format!("{}_help", step.name), run);
    }
}
