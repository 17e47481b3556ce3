//! The workshop's stages, proven on every step (book: Workshop). The checks that
//! `just check` runs on a learner's steps are the ones these tests run on the reference's,
//! so the two can never disagree. For every stage: the reference passes it; the skeleton
//! fails it with the stage's own `todo!()`; a plausible wrong solution fails it with a message
//! that points at the mistake. And filling a skeleton's `todo!()`s with the reference's code
//! gives back the reference, to the byte.

mod common;
#[path = "workshop/lib.rs"]
mod workshop;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{HostState, STEPS};
use workshop::StageId;
use workshop::checks::{Failure, STAGES, Stage};
use workshop::exercises::{MISTAKES, Mistake, PIECES, SEEN_ONLY_AS_ROOT};

/// The reference program of the step of stage `id`.
fn reference(id: StageId) -> &'static str {
    STEPS.iter().find(|step| step.number == id.step).unwrap().exe
}

/// Step `id.step` as a learner has it when they reach stage `id`: the earlier stages written,
/// this one's pieces still `todo!()`, the later ones lent from the reference, as `just check`
/// lends them.
fn skeleton_at(id: StageId) -> workshop::Files {
    let step = id.step;
    let written =
        workshop::lend_later_pieces(&workshop::skeleton(step), StageId::before_first(step))
            .unwrap();
    let mut files = workshop::skeleton(step);
    for piece in PIECES.iter().filter(|piece| piece.stage.step == step && piece.stage != id) {
        let text = &files[piece.file];
        let theirs = &written[piece.file];
        let body = &theirs[workshop::source::body(theirs, piece.function).unwrap()];
        let text = workshop::source::replace_body(text, piece.function, body).unwrap();
        files.insert(piece.file.to_string(), text);
    }
    files
}

/// The variant of the reference with `mistake` made in it: `mistake-3-2-1` for stage 3.2's
/// first.
fn mistake_name(mistake: &Mistake) -> String {
    let of_its_stage = MISTAKES.iter().filter(|other| other.stage == mistake.stage);
    let same = |other: &&Mistake| {
        (other.file, other.from, other.to) == (mistake.file, mistake.from, mistake.to)
    };
    let n = 1 + of_its_stage.take_while(|other| !same(other)).count();
    format!("mistake-{}-{n}", mistake.stage.dashed())
}

/// The skeletons at each stage and the mistakes, built once into target/workshop: the bin
/// for a name, such as `skeleton-3-1`.
fn variant(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let target = BUILT.get_or_init(|| {
        // In turn, as every process a test starts: cargo is not a container left running.
        let _turn = HostState::now();
        let target = Path::new(common::PROJECT).join("target/workshop");
        let sources = target.join("variants");
        let _ = std::fs::remove_dir_all(&sources);
        let mut bins = Vec::new();
        for stage in STAGES {
            bins.push((format!("skeleton-{}", stage.id.dashed()), skeleton_at(stage.id)));
        }
        for mistake in MISTAKES {
            bins.push((mistake_name(mistake), workshop::with_mistake(mistake)));
        }
        for (name, files) in &bins {
            workshop::write(&sources.join(name), files);
        }
        let names: Vec<(String, String)> =
            bins.iter().map(|(name, _)| (name.clone(), name.clone())).collect();
        std::fs::write(sources.join("Cargo.toml"), workshop::manifest("variants", &names, false))
            .unwrap();
        workshop::build(&sources, &target)
            .unwrap_or_else(|error| panic!("the variants do not build:\n{error}"));
        target
    });
    workshop::bin(target, name)
}

fn show(failure: &Failure) -> String {
    format!(
        "ran: {}\nexpected: {}\nsaw: {}\nhint: {}",
        failure.ran, failure.expected, failure.saw, failure.hint
    )
}

#[test]
fn the_reference_passes_every_stage() {
    rootfs_ready();
    for stage in STAGES {
        let host = HostState::now();
        let result = (stage.check)(Path::new(reference(stage.id)));
        assert!(
            result.is_ok(),
            "the reference fails stage {}:\n{}",
            stage.id,
            show(&result.unwrap_err())
        );
        host.assert_unchanged(&stage.id.to_string());
    }
}

/// The rootfs every check runs in, and stage 4.6's, made before any check holds the host.
fn rootfs_ready() {
    common::require_rootfs();
    common::attack_rootfs();
}

/// Stage `stage`'s check of the variant `name`, which must fail it (`why` if it passes), and
/// leave the host as it was.
fn failure_of(stage: &Stage, name: &str, why: &str) -> Failure {
    let program = variant(name);
    let host = HostState::now();
    let failure = (stage.check)(&program).expect_err(why);
    host.assert_unchanged(&stage.id.to_string());
    failure
}

#[test]
fn the_skeleton_fails_each_stage_with_its_own_todo() {
    rootfs_ready();
    for stage in STAGES {
        let name = format!("skeleton-{}", stage.id.dashed());
        let failure = failure_of(stage, &name, &format!("the skeleton passes stage {}", stage.id));
        let own = format!("not yet implemented: {}: ", stage.id);
        assert!(
            failure.saw.contains(&own),
            "stage {} failed, but not at its own todo!():\n{}",
            stage.id,
            show(&failure)
        );
    }
}

#[test]
fn every_plausible_mistake_fails_its_stage_and_is_named() {
    rootfs_ready();
    for mistake in MISTAKES {
        let stage = STAGES.iter().find(|stage| stage.id == mistake.stage).unwrap();
        let why = format!("stage {} misses: {}", stage.id, mistake.what);
        let failure = failure_of(stage, &mistake_name(mistake), &why);
        assert!(
            failure.hint.contains(mistake.says) || failure.saw.contains(mistake.says),
            "stage {}, {}: the message does not say {:?}:\n{}",
            stage.id,
            mistake.what,
            mistake.says,
            show(&failure)
        );
    }
}

/// Every stage has a plausible mistake that its check catches, and every piece a stage.
#[test]
fn every_stage_has_a_mistake_and_pieces() {
    for stage in STAGES {
        assert!(MISTAKES.iter().any(|m| m.stage == stage.id), "stage {} has no mistake", stage.id);
        assert!(
            PIECES.iter().any(|p| p.stage == stage.id),
            "stage {} has no piece to write",
            stage.id
        );
    }
    assert!(PIECES.iter().all(|piece| STAGES.iter().any(|stage| stage.id == piece.stage)));
    for (stage, what) in SEEN_ONLY_AS_ROOT {
        let named = MISTAKES.iter().any(|m| m.stage == StageId::of(stage) && m.what == *what);
        assert!(named, "SEEN_ONLY_AS_ROOT names no mistake of stage {stage}: {what}");
    }
}

/// A learner's path, end to end: the skeleton, each todo!() filled with the reference's
/// code, is the reference again, byte for byte (but the book's anchors and the skeleton's
/// header): it passes every stage, as the first test shows.
#[test]
fn filling_every_todo_with_the_references_code_gives_the_reference() {
    for step in 1..=5 {
        let skeleton = workshop::skeleton(step);
        let filled = workshop::lend_later_pieces(&skeleton, StageId::before_first(step))
            .expect("pieces to fill");
        for (name, text) in workshop::reference(step) {
            let expected = workshop::without_anchors(&text);
            let got = filled[&name].replacen(workshop::SKELETON_HEADER, "", 1);
            assert_eq!(got, expected, "step {step}'s {name}, filled, is not the reference's");
        }
    }
}

/// A learner's seat, end to end, with the commands `just exercise` and `just check` run:
/// step 3 made, checked (stage 3.1 fails at its todo!()), written (each todo!() filled with
/// the reference's code, as a learner who copies the book would), checked again: green.
/// Their work is kept: `exercise` again leaves it as it is.
#[test]
fn a_learner_goes_from_exercise_to_green() {
    common::require_rootfs();
    let seat = common::scratch_dir("learner");
    let _ = std::fs::remove_dir_all(&seat);
    let target = Path::new(common::PROJECT).join("target/workshop");
    let learner = workshop::learner::Learner { yours: seat.join("steps/yours"), target };
    let mut out = Vec::new();
    assert!(learner.exercise(3, false, &mut out));

    let host = HostState::now();
    let mut first = Vec::new();
    assert!(!learner.check(Some("3"), &mut first), "the skeleton passes");
    let first = String::from_utf8(first).unwrap();
    assert!(first.contains("✘ 3.1") && first.contains("not yet implemented: 3.1:"), "{first}");
    assert!(first.ends_with("step 3: 0 of 2 stages pass\n"), "{first}");
    // The book's Workshop page shows it.
    let transcript = format!("$ just check 3\n{first}[exit status: 1]");
    let run = common::Run { transcript, output: first.clone(), status: 1 };
    assert_transcript!("check_3_first", run);

    let dir = learner.yours.join("step3");
    let written =
        workshop::lend_later_pieces(&workshop::read(&dir), StageId::before_first(3)).unwrap();
    workshop::write(&dir, &written);
    let mut second = Vec::new();
    let green = learner.check(Some("3"), &mut second);
    let second = String::from_utf8(second).unwrap();
    assert!(green && second.ends_with("step 3: 2 of 2 stages pass\n"), "{second}");
    host.assert_unchanged("the learner's step 3");

    let mut again = Vec::new();
    assert!(learner.exercise(3, false, &mut again));
    assert_eq!(workshop::read(&dir), written, "just exercise 3 again changed the learner's work");
    assert!(String::from_utf8(again).unwrap().contains("already"));
    std::fs::remove_dir_all(&seat).unwrap();
}

/// `as_nobody_after` script: the project, at `$2`, as `nobody` would have it as their own
/// checkout (its directory theirs to enter, rootfs/ theirs, as `just rootfs` unpacks it for a
/// learner without root), through an overlay on a tmpfs at `$1` that leaves the real one as
/// it is.
const AS_A_LEARNER_WITHOUT_ROOT: &str = r#"scratch=$1 project=$2
shift 2
mount -t tmpfs tmpfs "$scratch"
mkdir "$scratch/upper" "$scratch/work"
layers="lowerdir=$project,upperdir=$scratch/upper,workdir=$scratch/work"
mount -t overlay overlay -o "$layers" "$project"
chmod 755 "$project"
chown -R 65534:65534 "$project/rootfs" "$project/target/attack-rootfs""#;

/// In the environment of this test's own copy that runs as the learner: the checks to run, a
/// line `STAGE PROGRAM` each.
const CHECKS_AS_THE_LEARNER: &str = "BYOC_CHECKS_AS_THE_LEARNER";

/// What that copy prints before each check's verdict.
const VERDICT: &str = "=== verdict\n";

/// Without root (book: Workshop, Without root), `just check` runs as the learner, and each
/// stage's safety net is a user namespace of theirs. Checked here as user `nobody`, by a copy
/// of this test run as `nobody`: the reference passes every stage of steps 1 to 4 (2.4 and
/// 4.3 but for the parts that need root, which they name), step 5's stages say they need
/// root, and every mistake is still caught, but those that only root sees (`--user`, the
/// devices that mknod makes), which `Mistake::needs_root` names.
#[test]
fn without_root_the_checks_still_judge() {
    if let Ok(checks) = std::env::var(CHECKS_AS_THE_LEARNER) {
        // The copy, as the learner: each check in turn, as `just check` runs it.
        for check in checks.lines() {
            let (id, program) = check.split_once(' ').unwrap();
            let id: StageId = id.parse().unwrap();
            let stage = STAGES.iter().find(|stage| stage.id == id).unwrap();
            print!("{VERDICT}");
            workshop::learner::check_stage(stage, Path::new(program), None, &mut std::io::stdout());
        }
        return;
    }
    rootfs_ready();
    // Each check, the verdict it must give, and what its report must say (a mistake's name).
    let mut runs: Vec<(StageId, PathBuf, &str, &str)> = Vec::new();
    for stage in STAGES {
        let verdict = if stage.id.step == 5 { "- " } else { "✔ " };
        runs.push((stage.id, PathBuf::from(reference(stage.id)), verdict, ""));
    }
    let caught = MISTAKES.iter().filter(|mistake| !mistake.needs_root() && mistake.stage.step < 5);
    for mistake in caught {
        let program = variant(&mistake_name(mistake));
        runs.push((mistake.stage, program, "✘ ", mistake.says));
    }
    let checks: Vec<String> =
        runs.iter().map(|(id, program, ..)| format!("{id} {}", program.display())).collect();
    let scratch = common::scratch_dir("without-root");
    std::fs::create_dir_all(&scratch).unwrap();
    let host = HostState::now();
    let output = common::as_nobody_after(AS_A_LEARNER_WITHOUT_ROOT)
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/")
        .arg(&scratch)
        .arg(common::PROJECT)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "without_root_the_checks_still_judge", "--nocapture"])
        .env(CHECKS_AS_THE_LEARNER, checks.join("\n"))
        .output()
        .unwrap();
    host.assert_unchanged("the checks without root");
    std::fs::remove_dir(&scratch).unwrap();
    let seen = String::from_utf8_lossy(&output.stdout).into_owned();
    let reports: Vec<&str> = seen.split(VERDICT).skip(1).collect();
    assert_eq!(reports.len(), runs.len(), "{seen}{}", String::from_utf8_lossy(&output.stderr));
    for ((id, program, verdict, says), report) in runs.iter().zip(reports) {
        let wanted = format!("{verdict}{id} ");
        let named = report.contains(says);
        assert!(
            report.starts_with(&wanted) && named,
            "{}, without root:\n{report}",
            program.display()
        );
    }
    assert!(seen.contains("(all but --userns-remap, which is root's)"), "{seen}");
}

/// The `-v` narration is made from each call's own arguments (book: chapter 1, What -v
/// shows): a planted mistake shows in it, where a narration written by hand would still
/// say what the reference does.
#[test]
fn the_narration_shows_the_planted_mistakes() {
    let cases = [
        ("2.2", "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE, NULL)", "MS_REC|MS_SHARED"),
        ("2.3", "{ifr_name: \"lo\", ifr_flags: IFF_UP}", "{ifr_name: \"lo\", ifr_flags: 0}"),
        (
            "1.1",
            "[\"/proc/self/exe\", \"child\", \"-v\"",
            "[\"/proc/self/exe\", \"child\", \"run\"",
        ),
    ];
    for (stage, right, wrong) in cases {
        let stage = StageId::of(stage);
        let first = MISTAKES.iter().find(|mistake| mistake.stage == stage).unwrap();
        let mistake = variant(&mistake_name(first));
        for (program, shown, hidden) in
            [(Path::new(reference(stage)), right, wrong), (mistake.as_path(), wrong, right)]
        {
            let host = HostState::now();
            let mut command = common::as_a_learner(std::process::Command::new(program));
            command.args(["run", "-v", "echo", "hi"]);
            let run = common::transcript_of(command, &format!("{stage} run -v echo hi"));
            host.assert_unchanged(&stage.to_string());
            assert!(run.output.contains(shown), "{shown} not narrated:\n{}", run.transcript);
            assert!(!run.output.contains(hidden), "{hidden} narrated:\n{}", run.transcript);
        }
    }
}
