//! The workshop track's commands, which the justfile runs (book: Workshop):
//!
//!   workshop exercise N [--from-previous]   make steps/yours/stepN: step N's skeleton, or a
//!                                           copy of your own step N-1
//!   workshop check [N | N.K]                check your steps, stage by stage, in the safety net
//!   workshop yours N                        build your step N, the reference's code standing
//!                                           in for its pieces still todo!(): prints the program
//!   workshop prepare                        build the crates your steps use, ahead of time
//!   workshop doctor [--fix]                 is this machine ready? --fix clears leftovers
//!
//! `check` runs as root and builds your code as you; or, for a learner without root, as them
//! (book: Workshop, Without root). It is a test target
//! that `cargo test` alone does not run: `cargo test --test workshop -- check 3`.

#[path = "../common/mod.rs"]
mod common;
#[path = "lib.rs"]
mod workshop;

mod doctor;
// The doctor's facts, from the steps themselves: step 5's files, with what they use from their
// crate (its limits.rs and narrate.rs). The doctor uses a part of them.
#[allow(dead_code)]
#[path = "../../steps/step5/limits.rs"]
mod limits;
#[allow(dead_code)]
#[path = "../../steps/step5/narrate.rs"]
mod narrate;
#[allow(dead_code)]
#[path = "../../steps/step5/rootless.rs"]
mod rootless;
#[allow(dead_code)]
#[path = "../../steps/step5/cgroup/trees.rs"]
mod trees;

use std::path::Path;
use std::process::ExitCode;

use workshop::learner::Learner;

fn main() -> ExitCode {
    let project = Path::new(common::PROJECT);
    let learner =
        Learner { yours: project.join("steps/yours"), target: project.join("target/yours") };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = &mut std::io::stdout();
    let done = match args.as_slice() {
        ["exercise", step] | ["exercise", step, "--from-previous"] => match step.parse() {
            Ok(step @ 1..=5) => learner.exercise(step, args.len() == 3, out),
            _ => {
                eprintln!("error: there is no step {step}: the steps are 1 to 5");
                return ExitCode::from(2);
            }
        },
        ["check"] => learner.check(None, out),
        ["check", what] => learner.check(Some(what), out),
        ["prepare"] => learner.prepare(out),
        // The program that `just yours N` runs, on stdout; what it says, on stderr.
        ["yours", step] => match step.parse() {
            Ok(step @ 1..=5) => match learner.yours(step, &mut std::io::stderr()) {
                Some(program) => {
                    println!("{}", program.display());
                    true
                }
                None => false,
            },
            _ => {
                eprintln!("error: there is no step {step}: the steps are 1 to 5");
                return ExitCode::from(2);
            }
        },
        // As the shell's doctor did: --fix if it comes first, the rest unread.
        ["doctor", rest @ ..] => return doctor::run(rest.first() == Some(&"--fix")),
        _ => {
            eprintln!(
                "usage: workshop exercise N [--from-previous] | check [N | N.K] | yours N \
                 | prepare | doctor [--fix]"
            );
            return ExitCode::from(2);
        }
    };
    if done { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
