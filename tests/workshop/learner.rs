//! The learner's commands (book: Workshop): make a step to write, check it stage by stage,
//! prepare the crates. `main.rs` runs them for `just`; the tests run them on a learner of
//! their own.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::workshop::checks::{self, Failure, WithoutRoot};
use crate::workshop::exercises::PIECES;
use crate::workshop::{self as ws, StageId};

/// A learner's work: their steps, in `steps/yours/` of the checkout, built into `target/yours/`.
pub struct Learner {
    pub yours: PathBuf,
    pub target: PathBuf,
}

/// What became of a stage's check.
pub enum Verdict {
    Passed,
    /// Not checked: the learner has no root, and the stage needs it.
    NeedsRoot,
    Failed,
}

/// Check `stage` on `program` and say how it went: ✔, ✘ with the failure, or, without root,
/// that it needs root. `lent` says why the program is not all the learner's own, if it is not,
/// and what of it is lent.
pub fn check_stage(
    stage: &checks::Stage,
    program: &Path,
    lent: Option<(&str, &ws::Lent)>,
    unit_tests: Option<&UnitTests>,
    out: &mut dyn Write,
) -> Verdict {
    let mut notes: Vec<String> = lent.map(|(note, _)| note.to_string()).into_iter().collect();
    match (checks::rootless(), &stage.without_root) {
        (true, WithoutRoot::None(why)) => {
            let _ = writeln!(out, "- {} {}: needs root, for {why}", stage.id, stage.name);
            return Verdict::NeedsRoot;
        }
        (true, WithoutRoot::AllBut(what)) => notes.push(format!("all but {what}")),
        _ => {}
    }
    let checked = (stage.check)(program).and_then(|()| unit_tests.map_or(Ok(()), UnitTests::run));
    match checked {
        Ok(()) => {
            let notes = match notes.is_empty() {
                true => String::new(),
                false => format!(" ({})", notes.join("; ")),
            };
            let _ = writeln!(out, "✔ {} {}{notes}", stage.id, stage.name);
            Verdict::Passed
        }
        Err(failure) => {
            let _ = writeln!(out, "✘ {} {}", stage.id, stage.name);
            let saw = in_learners_files(&failure.saw, lent.map(|(_, lent)| lent));
            report(&Failure { saw, ..failure }, stage.read, out);
            Verdict::Failed
        }
    }
}

/// The unit tests that the skeleton keeps from the reference, for a stage whose pieces they
/// test (`seccomp::tests` for 4.6's): run after the stage's check, on the same code.
pub struct UnitTests {
    /// The test program that `cargo test` built of the step checked.
    pub program: PathBuf,
    /// The modules to run, as libtest's filters: `seccomp::tests::`.
    pub modules: Vec<String>,
    /// The step: `cargo test --bin stepN …`, as the learner would type it.
    pub step: u8,
}

impl UnitTests {
    /// Ok if every test of the modules passes; else the failure, with libtest's report of the
    /// tests that failed, each with its assertion's message.
    fn run(&self) -> Result<(), Failure> {
        let shown = format!("cargo test --bin step{} {}", self.step, self.modules.join(" "));
        let output = std::process::Command::new(&self.program)
            .args(&self.modules)
            .args(["--quiet", "--test-threads=1"])
            .output();
        let (passed, text) = match output {
            Ok(output) => (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr),
            ),
            Err(error) => (false, format!("cannot run {}: {error}", self.program.display())),
        };
        if passed {
            return Ok(());
        }
        // libtest's report: from the first test's output to the list of those that failed.
        let report = text.find("\n---- ").map_or(text.as_str(), |at| &text[at + 1..]);
        Err(Failure {
            ran: shown,
            expected: "every unit test of the stage's pieces passes".to_string(),
            saw: report.trim_end().to_string(),
            hint: "a unit test of your piece fails: its name, and its assertion's message, say                    what the piece must do (the tests are in the file's tests.rs, beside it)"
                .to_string(),
        })
    }
}

/// What a learner without root is told first.
const ROOTLESS: &str = "Without root: each stage runs your step as the root of a user namespace \
                        of your own, the safety net, with no cgroup (book: Workshop, Without root).";

/// What `check` checks of one step: its stages, each with the program to check it with.
struct StepPlan {
    step: u8,
    stages: Vec<StagePlan>,
}

/// A stage, the program to check it with, and why that program is not all the learner's own,
/// if it is not.
struct StagePlan {
    stage: &'static checks::Stage,
    /// The bin the program is, in the learner's package or in the one with pieces lent.
    bin: String,
    program: PathBuf,
    lent: Option<(String, ws::Lent)>,
    /// The modules of unit tests of the stage's pieces (`ws::unit_tests_of`), and, once built,
    /// the program that runs them.
    modules: Vec<String>,
    unit_tests: Option<UnitTests>,
}

impl Learner {
    /// The steps started, in order.
    pub fn started(&self) -> Vec<u8> {
        (1..=5).filter(|step| self.yours.join(format!("step{step}/main.rs")).exists()).collect()
    }

    /// `steps/yours/Cargo.toml`: a package of its own, with a bin for each step started.
    fn write_manifest(&self) {
        let bins: Vec<(String, String)> = self
            .started()
            .into_iter()
            .map(|step| (format!("step{step}"), format!("step{step}")))
            .collect();
        fs::write(self.yours.join("Cargo.toml"), ws::manifest("yours", &bins, true)).unwrap();
    }

    /// Make `steps/yours/stepN`: the skeleton, or a copy of the learner's step N-1.
    pub fn exercise(&self, step: u8, from_previous: bool, out: &mut dyn Write) -> bool {
        let dir = self.yours.join(format!("step{step}"));
        let shown = Path::new("steps/yours").join(format!("step{step}"));
        let shown = shown.display();
        if dir.exists() {
            let _ = writeln!(
                out,
                "Your step {step} is in {shown}/ already: carry on there, then `just check {step}`."
            );
            let _ = writeln!(
                out,
                "To start it over, move it away first (mv {shown} {shown}.old), then `just exercise {step}` again."
            );
            return true;
        }
        let files = if from_previous {
            let previous = self.yours.join(format!("step{}", step - 1));
            if step == 1 || !previous.join("main.rs").exists() {
                let _ = writeln!(
                    out,
                    "error: there is no steps/yours/step{}/ to start from: `just exercise {step}` starts from the skeleton",
                    step.saturating_sub(1)
                );
                return false;
            }
            ws::read(&previous)
        } else {
            ws::skeleton(step)
        };
        ws::write(&dir, &files);
        fs::write(dir.join(ws::STAMP), ws::stamp(step)).unwrap();
        self.write_manifest();
        let _ = writeln!(out, "Your step {step} is in {shown}/ (git ignores steps/yours/).");
        if from_previous {
            let _ = writeln!(
                out,
                "It is a copy of your step {}: add what chapter {step} adds.",
                step - 1
            );
        } else {
            let _ =
                writeln!(out, "Each todo!() says what to write, and where the book explains it:");
            for piece in PIECES.iter().filter(|piece| piece.stage.step == step) {
                let _ = writeln!(
                    out,
                    "  {}  {shown}/{}  fn {}",
                    piece.stage, piece.file, piece.function
                );
            }
        }
        let _ = writeln!(
            out,
            "Run it with `just yours {step} run …`; check it with `just check {step}`."
        );
        true
    }

    /// Build the learner's steps and, for each stage, the same code with every other stage's
    /// pieces lent from the reference (where the learner's are not already the same): the
    /// program to check each stage with, so that each stage judges the learner's own pieces.
    fn build(&self, steps: &[u8]) -> Result<Vec<StepPlan>, String> {
        self.write_manifest();
        ws::build(&self.yours, &self.target)
            .map_err(|error| format!("your code does not build:\n{error}"))?;
        let lent_dir = self.target.join("lent");
        let _ = fs::remove_dir_all(&lent_dir);
        let mut bins = Vec::new();
        let mut plan = Vec::new();
        for &step in steps {
            let files = ws::read(&self.yours.join(format!("step{step}")));
            let mut stages = Vec::new();
            for stage in checks::of_step(step) {
                let lent = ws::lend_other_pieces(&files, stage.id);
                let (bin, lent) = if lent.stages.is_empty() {
                    (format!("step{step}"), None)
                } else {
                    let name = format!("step{step}-lent-{}", stage.id.dashed());
                    ws::write(&lent_dir.join(&name), &lent.files);
                    bins.push((name.clone(), name.clone()));
                    let note = format!(
                        "{} lent from the reference for this check",
                        ws::stage_list(&lent.stages)
                    );
                    (name, Some((note, lent)))
                };
                let program = ws::bin(&self.target, &bin);
                let modules = ws::unit_tests_of(&files, stage.id);
                stages.push(StagePlan { stage, bin, program, lent, modules, unit_tests: None });
            }
            plan.push(StepPlan { step, stages });
        }
        if !bins.is_empty() {
            fs::write(lent_dir.join("Cargo.toml"), ws::manifest("yours-lent", &bins, false))
                .unwrap();
            ws::build(&lent_dir, &self.target).map_err(|error| {
                format!("cannot build your code with the other stages' pieces lent:\n{error}")
            })?;
        }
        self.build_unit_tests(&mut plan, &lent_dir)?;
        Ok(plan)
    }

    /// The unit tests of each stage of `plan` whose pieces have some, built of the same code as
    /// the stage's program: one `cargo test --no-run` for each package, the learner's own and
    /// the one with pieces lent in `lent_dir`.
    fn build_unit_tests(&self, plan: &mut [StepPlan], lent_dir: &Path) -> Result<(), String> {
        let mut programs = Vec::new();
        for (dir, lent) in [(self.yours.as_path(), false), (lent_dir, true)] {
            let mut bins: Vec<String> = plan
                .iter()
                .flat_map(|step| &step.stages)
                .filter(|planned| !planned.modules.is_empty() && planned.lent.is_some() == lent)
                .map(|planned| planned.bin.clone())
                .collect();
            bins.dedup(); // a bin the learner's own step serves more than one stage
            if !bins.is_empty() {
                let built = ws::build_unit_tests(dir, &self.target, &bins)
                    .map_err(|error| format!("your code's unit tests do not build:\n{error}"))?;
                programs.extend(built);
            }
        }
        for planned in plan.iter_mut().flat_map(|step| step.stages.iter_mut()) {
            let program = programs.iter().find(|(bin, _)| *bin == planned.bin);
            planned.unit_tests =
                program.filter(|_| !planned.modules.is_empty()).map(|(_, program)| UnitTests {
                    program: program.clone(),
                    modules: planned.modules.clone(),
                    step: planned.stage.id.step,
                });
        }
        Ok(())
    }

    /// Check the learner's steps (`what`: a step, a stage, or every step started), stage by
    /// stage, stopping at a step's first failure. True when every stage checked passes.
    pub fn check(&self, what: Option<&str>, out: &mut dyn Write) -> bool {
        let (steps, only): (Vec<u8>, Option<StageId>) = match what {
            None => (self.started(), None),
            Some(id) if id.contains('.') => {
                // A stage, N.K, of step N; what is no stage (3.x) matches none of its stages.
                let step = id.split('.').next().unwrap_or_default().parse().unwrap_or(0);
                (vec![step], Some(id.parse().unwrap_or(StageId::before_first(step))))
            }
            Some(step) => (vec![step.parse().unwrap_or(0)], None),
        };
        if steps.is_empty() {
            let _ = writeln!(out, "No step started yet: `just exercise 1` makes your step 1.");
            return false;
        }
        if let Some(step) = steps.iter().find(|step| !self.started().contains(step)) {
            let _ = writeln!(out, "You have no step {step} yet: `just exercise {step}` makes it.");
            return false;
        }
        let plan = match self.build(&steps) {
            Ok(plan) => plan,
            Err(error) => {
                let _ = writeln!(out, "{error}");
                return false;
            }
        };
        for &step in &steps {
            self.say_if_made_from_another_skeleton(step, out);
        }
        let rootless = checks::rootless();
        if rootless {
            let _ = writeln!(out, "{ROOTLESS}");
        }
        let mut all_pass = true;
        for StepPlan { step, stages } in plan {
            let stages: Vec<StagePlan> = stages
                .into_iter()
                .filter(|planned| only.is_none_or(|id| planned.stage.id == id))
                .collect();
            let (mut passed, mut need_root) = (0, 0);
            for StagePlan { stage, program, lent, unit_tests, .. } in &stages {
                let lent = lent.as_ref().map(|(note, lent)| (note.as_str(), lent));
                match check_stage(stage, program, lent, unit_tests.as_ref(), out) {
                    Verdict::Passed => passed += 1,
                    Verdict::NeedsRoot => need_root += 1,
                    Verdict::Failed => break,
                }
            }
            all_pass &= passed + need_root == stages.len();
            let noun = if stages.len() == 1 { "stage passes" } else { "stages pass" };
            let root = match need_root {
                0 => String::new(),
                n => format!(", {n} need root: `sudo just check {step}` on a machine with sudo"),
            };
            let _ = writeln!(out, "step {step}: {passed} of {} {noun}{root}", stages.len());
        }
        all_pass
    }

    /// When the learner's step `step` was made from a skeleton other than today's (the
    /// workbook changed since `just exercise`: a piece renamed, added, or given other
    /// arguments), say what changed and what to do: the reference's code would not be lent
    /// for a piece it cannot find, and the checks would judge a step that is no longer the
    /// one the book describes.
    fn say_if_made_from_another_skeleton(&self, step: u8, out: &mut dyn Write) {
        let stamp = self.yours.join(format!("step{step}")).join(ws::STAMP);
        let Ok(theirs) = fs::read_to_string(&stamp) else {
            let _ = writeln!(
                out,
                "note: steps/yours/step{step} has no {}: it was made before the skeletons \
                 had a version, and may miss pieces that the checks and the book expect. To \
                 be sure, start it over: mv steps/yours/step{step} steps/yours/step{step}.old; \
                 just exercise {step}; then copy your code into the new step.",
                ws::STAMP
            );
            return;
        };
        let changes = ws::stamp_changes(&theirs, &ws::stamp(step));
        if changes.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "note: your step {step} was made from an older skeleton: its pieces have changed \
             since `just exercise {step}`:"
        );
        for change in &changes {
            let _ = writeln!(out, "    {change}");
        }
        let _ = writeln!(
            out,
            "  The checks look for today's pieces. Start it over and bring your code along: mv \
             steps/yours/step{step} steps/yours/step{step}.old; just exercise {step}; then \
             copy each body you wrote into the new step, and write the new pieces."
        );
    }

    /// For `just yours STEP`: build the learner's step, with the reference's code for each
    /// piece still `todo!()`, so that a step runs by hand before all its stages are written
    /// (each part's Check your work, on one's own code), and say which stages are lent. The
    /// program to run; None, with why, when it does not build.
    pub fn yours(&self, step: u8, out: &mut dyn Write) -> Option<PathBuf> {
        let lent = ws::lend_todo_pieces(&ws::read(&self.yours.join(format!("step{step}"))), step);
        if lent.stages.is_empty() {
            self.write_manifest();
            let built = ws::build(&self.yours, &self.target);
            return self.built(built, out).then(|| ws::bin(&self.target, &format!("step{step}")));
        }
        let _ = writeln!(
            out,
            "just yours {step}: {} still todo!() in your step: the reference's code stands in \
             for {} in this run",
            ws::stage_list(&lent.stages),
            if lent.stages.len() == 1 { "it" } else { "them" }
        );
        let dir = self.target.join("run");
        let _ = fs::remove_dir_all(&dir);
        let name = format!("step{step}-lent");
        // At the learner's own path in the package: a panic's Location names their file.
        let sources = format!("steps/yours/step{step}");
        ws::write(&dir.join(&sources), &lent.files);
        let bins = [(name.clone(), sources)];
        fs::write(dir.join("Cargo.toml"), ws::manifest("yours-run", &bins, true)).unwrap();
        let built = ws::build(&dir, &self.target);
        if !self.built(built, out) {
            return None;
        }
        // Named as the learner's own, so that `pgrep -x step4`, in a chapter's Check your
        // work, finds it.
        let program = dir.join("bin").join(format!("step{step}"));
        fs::create_dir_all(program.parent().unwrap()).unwrap();
        fs::copy(ws::bin(&self.target, &name), &program).unwrap();
        ws::give_back(&dir);
        Some(program)
    }

    /// Whether `built`, and if not, cargo's errors, said.
    fn built(&self, built: Result<(), String>, out: &mut dyn Write) -> bool {
        if let Err(error) = &built {
            let _ = writeln!(out, "your code does not build:\n{error}");
        }
        built.is_ok()
    }

    /// For `just prepare`: build the crates that the steps use into the learner's target,
    /// from a throwaway copy of the reference's step 5, so that the day's first build is quick.
    pub fn prepare(&self, out: &mut dyn Write) -> bool {
        let dir = self.target.join("prepare");
        let _ = fs::remove_dir_all(&dir);
        ws::write(&dir.join("step5"), &ws::reference(5));
        let bins = [("prepare".to_string(), "step5".to_string())];
        fs::write(dir.join("Cargo.toml"), ws::manifest("prepare", &bins, true)).unwrap();
        let built = ws::build(&dir, &self.target);
        let _ = fs::remove_dir_all(&dir);
        match built {
            Ok(()) => {
                writeln!(out, "The crates for your steps are built, in target/yours/.").is_ok()
            }
            Err(error) => {
                let _ = writeln!(out, "{error}");
                false
            }
        }
    }
}

/// `text`, a program's output, with each place in a step's source, as cargo names it from
/// the package's directory (`step4/init.rs:151`, or `step4-lent-4-1/init.rs:160` in a copy
/// with pieces lent), said as the learner's file and line: `steps/yours/step4/init.rs:151`,
/// where they edit it. A line of a body lent is said to be the reference's.
pub fn in_learners_files(text: &str, lent: Option<&ws::Lent>) -> String {
    static PLACE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let place = PLACE.get_or_init(|| {
        regex::Regex::new(r"(^|[\s(])(step\d)(-lent[-\d]*)?/([\w/]+\.rs):(\d+)").unwrap()
    });
    let said = place.replace_all(text, |found: &regex::Captures| {
        let (before, step, file) = (&found[1], &found[2], &found[4]);
        let line: usize = found[5].parse().unwrap_or(0);
        let line = match (found.get(3), lent) {
            (Some(_), Some(lent)) => lent.learner_line(file, line),
            _ => Some(line),
        };
        match line {
            Some(line) => format!("{before}steps/yours/{step}/{file}:{line}"),
            None => format!("{before}the reference's {file}, lent for this check"),
        }
    });
    said.into_owned()
}

fn report(failure: &Failure, read: &str, out: &mut dyn Write) {
    let indent = |text: &str| text.lines().collect::<Vec<_>>().join("\n              ");
    let _ = writeln!(out, "    ran:      {}", failure.ran);
    let _ = writeln!(out, "    expected: {}", indent(&failure.expected));
    let _ = writeln!(out, "    saw:      {}", indent(failure.saw.trim_end()));
    let _ = writeln!(out, "    hint:     {}", indent(&failure.hint));
    let _ = writeln!(out, "    read:     {read}");
}
