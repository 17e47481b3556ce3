//! The book's diagrams against the code. Each step diagram (book/src/images/step*.svg) draws
//! system calls in an order, and the step's `-v` transcript, a tested snapshot, shows the
//! order the code makes them in: the two must agree, so that a diagram cannot drift from the
//! code again (as step4-filesystems.svg once drew the old root going before the new mounts).
//!
//! How a diagram names a call, and in what order:
//!
//! - Its text is the content of its `<text>` elements, in document order (the order SVG
//!   paints them), but for those marked `class="aside"`: a mention out of time order, such as
//!   a comparison ("a copy, as fork() makes") or a box that explains the calls again by
//!   namespace. Joined, an argument list may run on from one `<text>` line to the next.
//! - A call is a name written just before `(`, such as `pivot_root(".", ".")` or `clone(…)`;
//!   or one of the step's own functions that FUNCTIONS lists, by name alone (step 2's
//!   numbered `make_mounts_private`), which stands for the call it makes.
//! - The constants in its arguments (words in capitals, such as `MS_BIND` or `SIGCHLD`; not
//!   the placeholders CMD, PID, UID, GID) must all be among the arguments of the transcript's
//!   call it stands for: `prctl(PR_SET_NO_NEW_PRIVS, 1)` is not any `prctl`.
//! - The transcript's calls are its `=> name(args) = result` lines, under the kernel's
//!   names: ALIASES gives them for what narrate! calls by nix's (`set_pdeathsig(SIGKILL)` is
//!   `prctl(PR_SET_PDEATHSIG, SIGKILL)`).
//! - A diagram may name a call that the transcript of `echo hello` never shows only if
//!   NOT_NARRATED says why; such a call is not ordered.
//!
//! The check: the diagram's calls, in order, are a subsequence of the transcript's, each
//! matched to the first call after the previous match with its name and constants.

use std::fs;
use std::path::PathBuf;

use regex::Regex;

/// Each step diagram, and the `-v` transcript of its step. Step 5's draws the cgroup, so it
/// is the transcript of a run with limits.
const DIAGRAMS: &[(&str, &str)] = &[
    ("step1.svg", "run__step1_verbose"),
    ("step2.svg", "run__step2_verbose"),
    ("step3.svg", "run__step3_verbose"),
    ("step4-init.svg", "run__step4_verbose"),
    ("step4-filesystems.svg", "run__step4_verbose"),
    ("step4-privileges.svg", "run__step4_verbose"),
    ("step4-host.svg", "run__step4_verbose"),
    ("step5.svg", "cgroups__step5_verbose_v2"),
];

/// The steps' functions that a diagram may name for the call each makes.
const FUNCTIONS: &[(&str, &str)] = &[
    ("make_mounts_private", "mount"),
    ("set_hostname", "sethostname"),
    ("bring_up_loopback", "ioctl"),
];

/// What narrate! prints for a call, and the kernel's call it is: name, and the arguments
/// that go before the narrated ones.
const ALIASES: &[(&str, &str, &str)] = &[
    ("set_pdeathsig", "prctl", "PR_SET_PDEATHSIG, "),
    ("set_no_new_privs", "prctl", "PR_SET_NO_NEW_PRIVS, 1"),
    ("dup2_stdin", "dup2", ""),
    ("dup2_stdout", "dup2", ""),
    ("dup2_stderr", "dup2", ""),
    ("dup2_raw", "dup2", ""),
];

/// Calls a diagram may draw that `echo hello`'s transcript never shows, and why.
const NOT_NARRATED: &[(&str, &str)] = &[
    ("supervise", "init's loop, a function of ours, not a system call"),
    ("kill", "init passes a signal on only when one comes, and none comes to `echo hello`"),
    ("pthread_sigmask", "nix's SigSet::thread_unblock, which narrate! does not wrap"),
];

/// Words in capitals that stand for a value, not a constant.
const PLACEHOLDERS: &[&str] = &["CMD", "PID", "UID", "GID", "N"];

fn project(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A call: its name and its arguments, as written.
#[derive(Debug, Clone)]
struct Call {
    name: String,
    args: String,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        if self.args.is_empty() && FUNCTIONS.iter().all(|(function, _)| *function != self.name) {
            return write!(f, "{}()", self.name);
        }
        let args: String = self.args.split_whitespace().collect::<Vec<_>>().join(" ");
        if args.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}({args})", self.name)
        }
    }
}

/// The constants of a diagram's arguments.
fn constants(args: &str) -> Vec<String> {
    Regex::new(r"\b[A-Z][A-Z0-9_]*\b")
        .unwrap()
        .find_iter(args)
        .map(|m| m.as_str().to_string())
        .filter(|word| !PLACEHOLDERS.contains(&word.as_str()))
        .collect()
}

/// The words of a transcript call's arguments.
fn words(args: &str) -> Vec<&str> {
    args.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// A diagram's text: its `<text>` elements but the asides, entities decoded, one a line.
fn diagram_text(svg: &str) -> String {
    let element = Regex::new(r"(?s)<text\b([^>]*)>(.*?)</text>").unwrap();
    let tag = Regex::new(r"<[^>]*>").unwrap();
    element
        .captures_iter(svg)
        .filter(|c| !c[1].contains(r#"class="aside""#))
        .map(|c| {
            tag.replace_all(&c[2], "")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The calls a diagram names, in order (module doc).
fn diagram_calls(svg: &str) -> Vec<Call> {
    let text = diagram_text(svg);
    let name = Regex::new(r"\b([a-z_][a-z0-9_]*)\(").unwrap();
    let mut calls: Vec<(usize, Call)> = Vec::new();
    for m in name.captures_iter(&text) {
        let whole = m.get(0).unwrap();
        // The arguments: to the matching parenthesis, or to the end of the text.
        let (mut depth, mut end) = (1, text.len());
        for (i, c) in text[whole.end()..].char_indices() {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            if depth == 0 {
                end = whole.end() + i;
                break;
            }
        }
        let args = text[whole.end()..end].to_string();
        calls.push((whole.start(), Call { name: m[1].to_string(), args }));
    }
    for (function, _) in FUNCTIONS {
        let by_name = Regex::new(&format!(r"\b{function}\b")).unwrap();
        for m in by_name.find_iter(&text) {
            calls.push((m.start(), Call { name: function.to_string(), args: String::new() }));
        }
    }
    calls.sort_by_key(|(at, _)| *at);
    calls.into_iter().map(|(_, call)| call).collect()
}

/// A transcript's calls, in order, under the kernel's names.
fn transcript_calls(snapshot: &str) -> Vec<Call> {
    let line = Regex::new(r"^=> ([a-z_][a-z0-9_]*)\((.*)\)(?: = .*| …)$").unwrap();
    snapshot
        .lines()
        .filter_map(|l| line.captures(l))
        .map(|c| {
            let (name, args) = (c[1].to_string(), c[2].to_string());
            match ALIASES.iter().find(|(narrated, _, _)| *narrated == name) {
                Some((_, kernel, before)) => {
                    Call { name: kernel.to_string(), args: format!("{before}{args}") }
                }
                None => Call { name, args },
            }
        })
        .collect()
}

/// Whether the diagram's `call` can stand for the transcript's `made`.
fn stands_for(call: &Call, made: &Call) -> bool {
    let name =
        FUNCTIONS.iter().find(|(f, _)| *f == call.name).map_or(call.name.as_str(), |(_, c)| c);
    let made_words = words(&made.args);
    name == made.name && constants(&call.args).iter().all(|c| made_words.contains(&c.as_str()))
}

/// The check (module doc): Ok, or what is wrong, said for the diagram's author.
fn check(diagram: &str, svg: &str, snapshot: &str) -> Result<usize, String> {
    let made = transcript_calls(snapshot);
    let mut at = 0;
    let mut matched: Vec<(Call, usize)> = Vec::new();
    for call in diagram_calls(svg) {
        if NOT_NARRATED.iter().any(|(name, _)| *name == call.name) {
            continue;
        }
        if !made.iter().any(|m| stands_for(&call, m)) {
            return Err(format!(
                "{diagram} names {call}, which the transcript never makes: name the call as the \
                 transcript does (ALIASES, FUNCTIONS), mark its <text> class=\"aside\" if it is \
                 no call of this run, or add it to NOT_NARRATED with why"
            ));
        }
        match made[at..].iter().position(|m| stands_for(&call, m)) {
            Some(i) => {
                matched.push((call, at + i));
                at += i + 1;
            }
            None => {
                let (before, _) = matched.last().expect("the first call matches: it is made");
                let order: Vec<String> =
                    matched.iter().map(|(c, _)| c.to_string()).chain([call.to_string()]).collect();
                return Err(format!(
                    "{diagram} names {call} after {before}, but the transcript makes no such call \
                     after that one: the diagram's order, {}, is not the code's.\nThe \
                     transcript's calls from {before} on: {}.\nA diagram's order is its <text> \
                     elements' order in the file: a mention out of time order is marked \
                     class=\"aside\".",
                    order.join(" → "),
                    names(&made[at - 1..])
                ));
            }
        }
    }
    Ok(matched.len())
}

/// Calls' names, in order, a run of one name as one: "mount ×3".
fn names(calls: &[Call]) -> String {
    let mut runs: Vec<(&str, usize)> = Vec::new();
    for call in calls {
        match runs.last_mut() {
            Some((name, n)) if *name == call.name => *n += 1,
            _ => runs.push((&call.name, 1)),
        }
    }
    let runs: Vec<String> = runs
        .iter()
        .map(|(name, n)| if *n == 1 { name.to_string() } else { format!("{name} ×{n}") })
        .collect();
    runs.join(", ")
}

fn read(path: &str) -> String {
    fs::read_to_string(project(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn each_diagram_draws_its_calls_in_the_order_of_the_code() {
    let mut failures = Vec::new();
    for (diagram, snapshot) in DIAGRAMS {
        let svg = read(&format!("book/src/images/{diagram}"));
        let transcript = read(&format!("tests/snapshots/{snapshot}.snap"));
        match check(diagram, &svg, &transcript) {
            Ok(0) => failures.push(format!(
                "{diagram} names no call that {snapshot} makes: what does it check?"
            )),
            Ok(_) => {}
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_step_diagram_is_checked() {
    let mut unchecked: Vec<String> = fs::read_dir(project("book/src/images"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("step") && name.ends_with(".svg"))
        .filter(|name| DIAGRAMS.iter().all(|(d, _)| d != name))
        .collect();
    unchecked.sort();
    assert!(unchecked.is_empty(), "no transcript in DIAGRAMS for {unchecked:?}");
}

/// Two calls of a diagram swapped: `first` and `second`, texts of two of its `<text>`
/// elements, trade places.
fn swapped(svg: &str, first: &str, second: &str) -> String {
    assert!(
        svg.contains(first) && svg.contains(second),
        "the diagram has {first:?} and {second:?}"
    );
    svg.replace(first, "\u{0}").replace(second, first).replace('\u{0}', second)
}

#[test]
fn a_diagram_with_two_calls_swapped_fails() {
    // The drift issue 20 found: the old root dropped before the container's own mounts.
    let svg = read("book/src/images/step4-filesystems.svg");
    let transcript = read("tests/snapshots/run__step4_verbose.snap");
    check("step4-filesystems.svg", &svg, &transcript).unwrap();
    let drifted = swapped(&svg, "mount(…)", r#"pivot_root(".", ".")"#);
    let error = check("step4-filesystems.svg", &drifted, &transcript).unwrap_err();
    assert!(error.contains("names mount"), "{error}");

    // And in each diagram, its first call and its last of another name, swapped.
    for (diagram, snapshot) in DIAGRAMS {
        let svg = read(&format!("book/src/images/{diagram}"));
        let transcript = read(&format!("tests/snapshots/{snapshot}.snap"));
        let calls: Vec<Call> = diagram_calls(&svg)
            .into_iter()
            .filter(|c| NOT_NARRATED.iter().all(|(name, _)| *name != c.name))
            .collect();
        let Some(last) = calls.iter().rev().find(|c| c.name != calls[0].name) else {
            continue; // one call, or one name: nothing to swap
        };
        let text = |call: &Call| match call.args.as_str() {
            "" if FUNCTIONS.iter().any(|(f, _)| *f == call.name) => call.name.clone(),
            args => format!("{}({}", call.name, args.lines().next().unwrap_or("")),
        };
        let drifted = swapped(&svg, &text(&calls[0]), &text(last));
        assert!(
            check(diagram, &drifted, &transcript).is_err(),
            "{diagram}: with {} and {} swapped, the check still passes",
            calls[0],
            last
        );
    }
}

#[test]
fn a_call_the_transcript_never_makes_fails() {
    let svg = read("book/src/images/step3.svg");
    let transcript = read("tests/snapshots/run__step3_verbose.snap");
    let error = check("step3.svg", &svg.replace("mkdir(", "mkfifo("), &transcript).unwrap_err();
    assert!(error.contains("never makes"), "{error}");
    // A constant the transcript's call does not have: not the bind mount.
    let error =
        check("step3.svg", &svg.replace("MS_BIND|MS_REC", "MS_MOVE"), &transcript).unwrap_err();
    assert!(error.contains("never makes"), "{error}");
}
