//! The workshop track (book: Workshop): a learner writes each step in `steps/yours/`, from a
//! skeleton made from the reference, and `just check` judges it stage by stage with the same
//! checks that `just test` runs on the reference steps.
//!
//! - `stage_id.rs`: a stage's identity, `N.K`, as a learner types it and as the checks compare it;
//! - `exercises.rs`: the pieces a learner writes, stage by stage, and plausible mistakes;
//! - `source.rs`: cutting and filling Rust functions, to make skeletons and variants;
//! - `checks.rs`: the stages and their checks;
//! - `learner.rs`: the learner's commands, `exercise`, `check` and `prepare`;
//! - `net.rs`: running a step in the safety net, where a wrong step cannot harm the host.

#![allow(dead_code)] // the commands and the tests each use their own part

pub mod checks;
pub mod exercises;
pub mod learner;
pub mod net;
pub mod source;
pub mod stage_id;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::PROJECT;
use exercises::{Mistake, PIECES};
pub use stage_id::StageId;

/// A step's source files, by their path in the step's directory: `main.rs`, `cgroup/trees.rs`.
pub type Files = BTreeMap<String, String>;

/// The lines a skeleton's main.rs has that the reference's has not, after its opening comment.
pub const SKELETON_HEADER: &str = "\n// Your step, from `just exercise`: write each todo!(), stage by stage, and\n// `just check` tells you how far you are. A todo!() leaves code unused for a\n// while: remove the next line when the step is done.\n#![allow(unused)]\n";

/// The files of the reference step `step`, in `steps/stepN/`.
pub fn reference(step: u8) -> Files {
    read(&Path::new(PROJECT).join(format!("steps/step{step}")))
}

/// `text` without the book's `// ANCHOR:` and `// ANCHOR_END:` lines, which mean nothing to a
/// learner writing the step.
pub fn without_anchors(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("// ANCHOR"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Step `step`'s skeleton: the reference without the book's anchors, each of its pieces'
/// bodies a `todo!()` that says what to write and where to read, and the header that allows
/// what the todo!()s leave unused.
pub fn skeleton(step: u8) -> Files {
    let mut files: Files =
        reference(step).into_iter().map(|(name, text)| (name, without_anchors(&text))).collect();
    for piece in PIECES.iter().filter(|piece| piece.stage.step == step) {
        let text = &files[piece.file];
        let todo = source::todo_body(text, piece.function, &piece.message())
            .unwrap_or_else(|| panic!("no fn {} in step {step}'s {}", piece.function, piece.file));
        let text = source::replace_body(text, piece.function, &todo).unwrap();
        files.insert(piece.file.to_string(), text);
    }
    let main = &files["main.rs"];
    // After the opening `//!` comment: the header's attribute must come before any item.
    let end = main.lines().take_while(|line| line.starts_with("//!")).map(|l| l.len() + 1).sum();
    let main = format!("{}{SKELETON_HEADER}{}", &main[..end], &main[end..]);
    files.insert("main.rs".to_string(), main);
    files
}

/// Whether `fn name`'s body in `text` is still the skeleton's `todo!()` for `piece`.
fn still_todo(text: &str, piece: &exercises::Piece) -> bool {
    let squeeze = |text: &str| text.split_whitespace().collect::<String>();
    let now = source::body(text, piece.function).map(|range| squeeze(&text[range]));
    let todo = source::todo_body(text, piece.function, &piece.message()).map(|body| squeeze(&body));
    now.is_some() && now == todo
}

/// `files`, a learner's step `after.step`, with each piece of a stage after `after` that is
/// still its `todo!()` replaced by the reference's body (after `StageId::before_first`, every
/// piece): the tests' learner at a stage, and a skeleton filled. (`just check` lends every
/// other stage's pieces: `lend_other_pieces`.) `None` when nothing is lent.
pub fn lend_later_pieces(files: &Files, after: StageId) -> Option<Files> {
    let reference = reference(after.step);
    let mut lent = files.clone();
    let mut any = false;
    for piece in PIECES.iter().filter(|piece| piece.stage.step == after.step && piece.stage > after)
    {
        let Some(text) = lent.get(piece.file) else { continue };
        if still_todo(text, piece) {
            let theirs = &reference[piece.file];
            let body = &theirs[source::body(theirs, piece.function).unwrap()];
            let text = source::replace_body(text, piece.function, body).unwrap();
            lent.insert(piece.file.to_string(), text);
            any = true;
        }
    }
    any.then_some(lent)
}

/// A learner's step with pieces of the reference's in it, for one check or one run.
pub struct Lent {
    pub files: Files,
    /// The stages whose pieces are the reference's here, and were not already: the learner's
    /// were still `todo!()`, or are written otherwise.
    pub stages: Vec<StageId>,
    /// The bodies lent, where they are in `files`: to say a line of these files as the line
    /// of the learner's.
    bodies: Vec<LentBody>,
}

/// A body lent: in `file`, lines `first..=last` of the lent text, which were `lines` lines in
/// the learner's.
struct LentBody {
    file: String,
    first: usize,
    last: usize,
    lines: usize,
}

impl Lent {
    /// Line `line` of the lent `file` is this line of the learner's; None when it is in a body
    /// lent, the reference's code.
    pub fn learner_line(&self, file: &str, line: usize) -> Option<usize> {
        let mut shift: isize = 0;
        for body in self.bodies.iter().filter(|body| body.file == file) {
            if (body.first..=body.last).contains(&line) {
                return None;
            }
            if body.last < line {
                shift += body.lines as isize - (body.last + 1 - body.first) as isize;
            }
        }
        line.checked_add_signed(shift)
    }
}

/// The lines `first..=last` of `fn function`'s body in `text`, counted from 1.
fn body_lines(text: &str, function: &str) -> (usize, usize) {
    let range = source::body(text, function).unwrap();
    let first = 1 + text[..range.start].matches('\n').count();
    (first, first + text[range].matches('\n').count())
}

/// `files`, a learner's step `stage.step`, with every piece of every other stage of the step
/// the reference's: what `just check` runs to judge `stage`, so that a mistake fails the stage
/// whose piece holds it, not the first stage that happens to run it.
pub fn lend_other_pieces(files: &Files, stage: StageId) -> Lent {
    lend_pieces(files, stage.step, |piece, _| piece.stage != stage)
}

/// `files`, a learner's step `step`, with each piece still `todo!()` the reference's: what
/// `just yours` runs, so that a step can run before all its stages are written.
pub fn lend_todo_pieces(files: &Files, step: u8) -> Lent {
    lend_pieces(files, step, |piece, text| still_todo(text, piece))
}

/// `files` with the reference's body for each piece of step `step` that `wanted`, given the
/// piece and the learner's text of its file, and that differs from the reference's.
pub fn lend_pieces(
    files: &Files,
    step: u8,
    wanted: impl Fn(&exercises::Piece, &str) -> bool,
) -> Lent {
    let reference = reference(step);
    let squeeze = |text: &str| text.split_whitespace().collect::<String>();
    let mut lent = Lent { files: files.clone(), stages: Vec::new(), bodies: Vec::new() };
    let mut pieces = Vec::new();
    for piece in PIECES.iter().filter(|piece| piece.stage.step == step) {
        let Some(text) = lent.files.get(piece.file) else { continue };
        let Some(ours) = source::body(text, piece.function) else { continue };
        let theirs = &reference[piece.file];
        let body = &theirs[source::body(theirs, piece.function).unwrap()];
        if !wanted(piece, text) || squeeze(&text[ours]) == squeeze(body) {
            continue;
        }
        let text = source::replace_body(text, piece.function, body).unwrap();
        lent.files.insert(piece.file.to_string(), text);
        pieces.push(piece);
        if !lent.stages.contains(&piece.stage) {
            lent.stages.push(piece.stage);
        }
    }
    lent.stages.sort();
    for piece in pieces {
        let (first, last) = body_lines(&lent.files[piece.file], piece.function);
        let (theirs_first, theirs_last) = body_lines(&files[piece.file], piece.function);
        let (file, lines) = (piece.file.to_string(), theirs_last + 1 - theirs_first);
        lent.bodies.push(LentBody { file, first, last, lines });
    }
    lent
}

/// `4.1, 4.3, 4.4`: the stages a note names.
pub fn stage_list(stages: &[StageId]) -> String {
    stages.iter().map(StageId::to_string).collect::<Vec<_>>().join(", ")
}

/// The file in a learner's step that says which skeleton it was made from (`just exercise`
/// writes it): its pieces, one line each, `N.K FILE fn NAME(ARGS) -> RESULT`.
pub const STAMP: &str = "skeleton-version";

/// Step `step`'s skeleton version: a line for each piece, its stage, file and signature, as
/// the reference has them today. A piece renamed, added, moved or given other arguments
/// changes it; a body rewritten does not.
pub fn stamp(step: u8) -> String {
    let reference = reference(step);
    let mut text = format!(
        "# Made by `just exercise {step}`: the pieces of the skeleton your step {step} was made from. \
         `just check` compares them with today's.\n"
    );
    for piece in PIECES.iter().filter(|piece| piece.stage.step == step) {
        let theirs = &reference[piece.file];
        let body = source::body(theirs, piece.function).unwrap();
        let start = theirs[..body.start].rfind(&format!("fn {}", piece.function)).unwrap();
        let signature = theirs[start..body.start].split_whitespace().collect::<Vec<_>>().join(" ");
        text += &format!("{} {} {signature}\n", piece.stage, piece.file);
    }
    text
}

/// What changed between the skeleton a learner's step was made from (`theirs`, its stamp)
/// and today's (`now`): a line for each piece gone, and each new, or with a new signature.
pub fn stamp_changes(theirs: &str, now: &str) -> Vec<String> {
    let pieces = |text: &str| -> Vec<String> {
        text.lines().filter(|line| !line.starts_with('#')).map(str::to_string).collect()
    };
    let (theirs, now) = (pieces(theirs), pieces(now));
    let gone = theirs.iter().filter(|line| !now.contains(line)).map(|line| format!("gone: {line}"));
    let new = now.iter().filter(|line| !theirs.contains(line)).map(|line| format!("new:  {line}"));
    gone.chain(new).collect()
}

/// The reference step, with `mistake` made in it.
pub fn with_mistake(mistake: &Mistake) -> Files {
    let mut files = reference(mistake.stage.step);
    let text = &files[mistake.file];
    let range = source::body(text, mistake.function).expect("the mistake's function");
    let body = &text[range.clone()];
    assert!(body.contains(mistake.from), "{:?} is not in {}", mistake.from, mistake.function);
    let wrong = body.replacen(mistake.from, mistake.to, 1);
    let text = format!("{}{wrong}{}", &text[..range.start], &text[range.end..]);
    files.insert(mistake.file.to_string(), text);
    files
}

/// Write `files` into `dir`, made if missing.
pub fn write(dir: &Path, files: &Files) {
    for (name, text) in files {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

/// Read a step's files back from `dir`.
pub fn read(dir: &Path) -> Files {
    let mut files = Files::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in fs::read_dir(&next).into_iter().flatten().filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                files.insert(name, fs::read_to_string(&path).unwrap());
            }
        }
    }
    files
}

/// The Cargo.toml of a package of learner's programs in `dir`: one bin for each of `bins`
/// (a name, and the directory of its main.rs, relative to `dir`), with the workbook's own
/// dependencies, so that they build from the same crates, offline.
pub fn manifest(name: &str, bins: &[(String, String)], debug: bool) -> String {
    let workbook = fs::read_to_string(Path::new(PROJECT).join("Cargo.toml")).unwrap();
    let dependencies = workbook
        .split("\n[")
        .find(|section| section.starts_with("dependencies]"))
        .expect("the workbook's [dependencies]");
    let mut text = format!(
        "# Made by `just exercise`: your steps, a package of their own.\n[package]\nname = \
         \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\nautobins = false\n\n"
    );
    for (bin, dir) in bins {
        text += &format!("[[bin]]\nname = \"{bin}\"\npath = \"{dir}/main.rs\"\n\n");
    }
    text += &format!("[{dependencies}\n");
    if !debug {
        text += "[profile.dev]\ndebug = false\n";
    }
    text
}

/// `cargo build` the package in `dir` into `target`, from the workbook's Cargo.lock and the
/// crates already fetched: no network. Run as root through sudo, it builds as the learner
/// who ran sudo, and gives `dir` and `target` back to them: root-owned files in a learner's
/// checkout would stop their next build. The error is cargo's output.
pub fn build(dir: &Path, target: &Path) -> Result<(), String> {
    cargo(dir, target, &["build"]).map(drop)
}

/// Build the unit tests of the package's `bins` in `dir` (`cargo test --no-run`), as `build`
/// builds: each bin's name and its test program.
pub fn build_unit_tests(
    dir: &Path,
    target: &Path,
    bins: &[String],
) -> Result<Vec<(String, PathBuf)>, String> {
    let mut args = vec!["test", "--no-run", "--message-format=json"];
    for bin in bins {
        args.extend(["--bin", bin]);
    }
    let messages = cargo(dir, target, &args)?;
    // One JSON message a line; an artifact's names its target, then its executable.
    let artifact =
        regex::Regex::new(r#""target":\{.*?"name":"([^"]+)".*"executable":"([^"]+)""#).unwrap();
    Ok(messages
        .lines()
        .filter_map(|line| artifact.captures(line))
        .map(|found| (found[1].to_string(), PathBuf::from(&found[2])))
        .collect())
}

/// Run `cargo SUBCOMMAND ARGS…` on the package in `dir`, into `target`, as `build` says: its
/// standard output, or its errors.
fn cargo(dir: &Path, target: &Path, args: &[&str]) -> Result<String, String> {
    fs::copy(Path::new(PROJECT).join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    fs::create_dir_all(target).unwrap();
    give_back(dir);
    give_back(target);
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(args)
        .args(["--offline", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target)
        .env_remove("RUSTFLAGS");
    if let Some((uid, gid, home)) = learner() {
        cargo.uid(uid).gid(gid).env("HOME", &home);
        if std::env::var_os("CARGO_HOME").is_none() {
            cargo.env("CARGO_HOME", home.join(".cargo"));
        }
    }
    let output = cargo.output().map_err(|error| format!("cannot run cargo: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The modules of unit tests, in a step's `files`, that test stage `stage`'s pieces: for a
/// piece in `seccomp.rs`, `seccomp::tests`, where `seccomp/tests.rs` is. The skeleton keeps
/// the reference's unit tests, and `just check` runs these for the stage.
pub fn unit_tests_of(files: &Files, stage: StageId) -> Vec<String> {
    let mut modules: Vec<String> = PIECES
        .iter()
        .filter(|piece| piece.stage == stage)
        .filter_map(|piece| piece.file.strip_suffix(".rs"))
        .filter(|module| files.contains_key(&format!("{module}/tests.rs")))
        .map(|module| format!("{}::tests::", module.replace('/', "::")))
        .collect();
    modules.sort();
    modules.dedup();
    modules
}

/// The learner who ran us through sudo: their UID, GID and home. None when not under sudo.
fn learner() -> Option<(u32, u32, PathBuf)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let uid: u32 = std::env::var("SUDO_UID").ok()?.parse().ok()?;
    let gid: u32 = std::env::var("SUDO_GID").ok()?.parse().ok()?;
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
    Some((uid, gid, user.dir))
}

/// Give `path`, and all beneath it, to the learner who ran us through sudo, if one did.
pub fn give_back(path: &Path) {
    if let Some((uid, gid, _)) = learner() {
        let _ = Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(path).status();
    }
}

/// Where cargo puts the bins of a package built into `target`.
pub fn bin(target: &Path, name: &str) -> PathBuf {
    target.join("debug").join(name)
}
