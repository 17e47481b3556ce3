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
    for mistake in MISTAKES.iter().filter(|mistake| mistake.applies_here()) {
        let stage = STAGES.iter().find(|stage| stage.id == mistake.stage).unwrap();
        let why = format!("stage {} misses: {}", stage.id, mistake.what);
        let failure = failure_of(stage, &mistake_name(mistake), &why);
        earlier_stages_pass(mistake);
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

/// A mistake is reported at its own stage: the earlier stages of its step pass. `just check`
/// lends the reference's pieces of every stage but the one it judges, so that a mistake in a
/// piece is seen by its stage's check alone; one in a function that is no piece (the runtime's
/// side that the skeleton gives, such as `parent`) is in every stage's program, and must pass
/// the earlier ones.
fn earlier_stages_pass(mistake: &Mistake) {
    let in_a_piece = PIECES.iter().any(|piece| {
        (piece.stage.step, piece.file, piece.function)
            == (mistake.stage.step, mistake.file, mistake.function)
    });
    if in_a_piece {
        return;
    }
    let program = variant(&mistake_name(mistake));
    let earlier = STAGES.iter().filter(|s| s.id.step == mistake.stage.step && s.id < mistake.stage);
    for stage in earlier {
        let host = HostState::now();
        let result = (stage.check)(&program);
        host.assert_unchanged(&stage.id.to_string());
        if let Err(failure) = result {
            panic!(
                "{}: stage {} fails before {}:\n{}",
                mistake.what,
                stage.id,
                mistake.stage,
                show(&failure)
            );
        }
    }
}

/// Stage 5.3 takes for a report of the OOM kill a line that says it, and whom it killed: not
/// a warning that names the memory controller's directory, as an rmdir refused does.
#[test]
fn the_oom_report_is_a_report() {
    let reports = [
        "container hit its memory limit (100 MiB): the OOM killer killed 1 process; peak 100 MiB",
        "OOM kill: the whole container",
        "oom_kill 2",
    ];
    assert!(reports.iter().all(|line| workshop::checks::says_an_oom_kill(line)));
    let others = [
        "warning: cannot remove cgroup \"/sys/fs/cgroup/memory/process_api/byoc-net-7/byoc-42\": \
         Device or resource busy (os error 16)",
        "Error: cannot write \"104857600\" to \"/sys/fs/cgroup/memory/byoc-42/memory.oom_control\"",
        "the container used its memory",
        "OOM killer: nothing killed",
    ];
    assert!(others.iter().all(|line| !workshop::checks::says_an_oom_kill(line)));
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
    let (learner, seat) = seat_with_exercise("learner", 3);

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

/// A learner's seat in a scratch directory `name`, with `just exercise STEP` done: their
/// steps build into the tests' own target/workshop. Remove the seat when done.
fn seat_with_exercise(name: &str, step: u8) -> (workshop::learner::Learner, PathBuf) {
    let seat = common::scratch_dir(name);
    let _ = std::fs::remove_dir_all(&seat);
    let target = Path::new(common::PROJECT).join("target/workshop");
    let learner = workshop::learner::Learner { yours: seat.join("steps/yours"), target };
    assert!(learner.exercise(step, false, &mut Vec::new()));
    (learner, seat)
}

/// `just check STEP` on `learner`'s seat, which must fail: what it printed. The host must be
/// as it was.
fn check_fails(learner: &workshop::learner::Learner, step: u8) -> String {
    let host = HostState::now();
    let mut out = Vec::new();
    let green = learner.check(Some(&step.to_string()), &mut out);
    host.assert_unchanged(&format!("the learner's step {step}"));
    let out = String::from_utf8(out).unwrap();
    assert!(!green, "step {step} passes:\n{out}");
    out
}

/// A mistake fails the stage whose piece holds it: a learner's step 1, all written, with a
/// wrong `child` (stage 1.2: it waits for the command instead of becoming it, so that a
/// status never comes back) passes 1.1, which is judged with the reference's `child`, and
/// fails 1.2. Without the lending of earlier and later pieces, 1.1 failed it.
#[test]
fn a_mistake_fails_the_stage_whose_piece_holds_it() {
    let (learner, seat) = seat_with_exercise("attribution", 1);
    let mistake = MISTAKES.iter().find(|m| m.stage == StageId::of("1.2")).unwrap();
    workshop::write(&learner.yours.join("step1"), &workshop::with_mistake(mistake));
    let out = check_fails(&learner, 1);
    let passed = "✔ 1.1 start a child that runs you again as `child` (1.2 lent from the \
                  reference for this check)\n✘ 1.2 become the command\n";
    assert!(out.starts_with(passed), "{out}");
    assert!(out.ends_with("step 1: 1 of 2 stages pass\n"), "{out}");
    std::fs::remove_dir_all(&seat).unwrap();
}

/// The unit tests that the skeleton keeps are part of `just check`, for the stage whose pieces
/// they test: a learner's step 4 whose filter answers EPERM, not ENOSYS, to a call newer than
/// the filter (which no program in the net makes) fails 4.6 at the unit test that says so;
/// the reference's passes.
#[test]
fn a_stages_unit_tests_are_part_of_its_check() {
    rootfs_ready();
    let (learner, seat) = seat_with_exercise("unit-tests", 4);
    let dir = learner.yours.join("step4");
    let newer_refused = Mistake {
        stage: StageId::of("4.6"),
        what: "calls newer than the filter refused with EPERM, as unknown ones",
        file: "seccomp.rs",
        function: "docker_profile",
        from: "    program.extend(newer_than_the_filter());\n",
        to: "",
        says: "calls_newer_than_the_filter_are_unknown",
    };
    let check_4_6 = |files: &workshop::Files| {
        workshop::write(&dir, files);
        let host = HostState::now();
        let mut out = Vec::new();
        let green = learner.check(Some("4.6"), &mut out);
        host.assert_unchanged("the learner's stage 4.6");
        (green, String::from_utf8(out).unwrap())
    };
    let (green, out) = check_4_6(&workshop::with_mistake(&newer_refused));
    assert!(!green, "{out}");
    let ran = "✘ 4.6 the system calls Docker refuses, refused\n    ran:      cargo test --bin step4 \
               seccomp::tests::\n";
    assert!(out.contains(ran) && out.contains(newer_refused.says), "{out}");
    let (green, out) = check_4_6(&workshop::reference(4));
    assert!(green && out.starts_with("✔ 4.6 "), "{out}");
    std::fs::remove_dir_all(&seat).unwrap();
}

/// `just yours 4` with only stage 4.1 written runs the learner's step (as Part 1's Check
/// your work needs): the reference's code stands in for the stages still `todo!()`, and one
/// line says which.
#[test]
fn a_step_runs_by_hand_with_its_todo_stages_lent() {
    common::require_rootfs();
    let (learner, seat) = seat_with_exercise("by-hand", 4);
    let dir = learner.yours.join("step4");
    let first = StageId::of("4.1");
    let written = workshop::lend_pieces(&workshop::read(&dir), 4, |piece, _| piece.stage == first);
    workshop::write(&dir, &written.files);
    let host = HostState::now();
    let mut said = Vec::new();
    let program = learner.yours(4, &mut said).expect("step 4, with 4.1 written, builds");
    let args = ["run", "sh", "-c", "echo hi"];
    let run = workshop::net::run(&program, &args, LIMIT);
    host.assert_unchanged("just yours 4");
    let said = String::from_utf8(said).unwrap();
    let lent = "just yours 4: 4.2, 4.3, 4.4, 4.5, 4.6, 4.7 still todo!() in your step: the \
                reference's code stands in for them in this run\n";
    assert_eq!(said, lent);
    assert_eq!((run.output.as_str(), run.status, run.harm.len()), ("hi\n", 0, 0));
    assert_eq!(program.file_name().unwrap(), "step4", "pgrep -x step4 would not find it");
    std::fs::remove_dir_all(&seat).unwrap();
}

/// Step 1 runs on the host, as chapter 1 shows it: its namespaces are the host's (the chapter
/// compares `ls -l /proc/self/ns`), and its `$$` a host PID, not a stand-in's. What it leaves
/// running is still found, said, and killed.
#[test]
fn step_1_runs_outside_the_net_as_chapter_1_shows() {
    let step1 = Path::new(reference(StageId::of("1.1")));
    let host = HostState::now();
    let namespaces = "readlink /proc/self/ns/mnt /proc/self/ns/pid /proc/self/ns/uts";
    let run = workshop::net::run(step1, &["run", "sh", "-c", namespaces], LIMIT);
    let left = workshop::net::run(step1, &["run", "sh", "-c", "sleep 30 & echo $!"], LIMIT);
    host.assert_unchanged("step 1, outside the net");
    let ours = ["mnt", "pid", "uts"].map(|ns| std::fs::read_link(format!("/proc/self/ns/{ns}")));
    let ours: String =
        ours.iter().map(|link| format!("{}\n", link.as_ref().unwrap().display())).collect();
    assert_eq!((run.output, run.status), (ours, 0));
    let sleep: u32 = left.output.trim().parse().expect("a PID");
    assert_eq!(
        left.harm,
        [format!("your program left processes running: {sleep} sleep (killed now)")]
    );
}

/// A learner's step made from an older skeleton (here, one whose 1.2 piece was `fn become`,
/// and which had no 1.1) is recognised by its stamp: `just check` says what changed, and what
/// to do, before it checks.
#[test]
fn a_step_made_from_an_older_skeleton_is_told_so() {
    let (learner, seat) = seat_with_exercise("older-skeleton", 1);
    let stamp = learner.yours.join("step1").join(workshop::STAMP);
    let today = std::fs::read_to_string(&stamp).unwrap();
    assert_eq!(today, workshop::stamp(1), "just exercise 1 wrote no stamp");
    let older: String = today
        .lines()
        .filter(|line| !line.starts_with("1.1 "))
        .map(|line| format!("{}\n", line.replace("fn child(", "fn become(")))
        .collect();
    std::fs::write(&stamp, older).unwrap();
    let out = check_fails(&learner, 1);
    let told = "note: your step 1 was made from an older skeleton: its pieces have changed since \
                `just exercise 1`:\n    gone: 1.2 main.rs fn become(";
    assert!(out.starts_with(told), "{out}");
    for new in ["\n    new:  1.1 main.rs fn start_child(", "\n    new:  1.2 main.rs fn child("] {
        assert!(out.contains(new), "{new:?} not said:\n{out}");
    }
    assert!(out.contains("just exercise 1; then copy each body you wrote"), "{out}");
    std::fs::remove_dir_all(&seat).unwrap();
}

/// The net reports only what the program did, seen from outside the stand-in: a program that
/// lazily unmounts the stand-in's /proc, or pivots its root away, cannot make it list the
/// host's processes or lose its own tools; its own lines ("Killed", its command line as the
/// program's parent's, its variables) never show; a `todo!()`
/// in clone's callback is one line, the learner's, not Rust's abort.
#[test]
fn the_net_sees_the_stand_in_from_outside() {
    common::require_rootfs();
    let sh = Path::new("/bin/sh");
    let detach = "umount -l /proc; sleep 30 & true";
    let pivot = "mount --make-rprivate / && mount --bind rootfs rootfs && cd rootfs && \
                 pivot_root . oldrootfs && exec sleep 1";
    let killed = "kill -9 $$";
    let parent = "tr '\\0' ' ' </proc/$PPID/cmdline; env | grep BYOC_";
    let todo = variant("skeleton-4-4");
    let host = HostState::now();
    let [detach, pivot, killed, parent] = [detach, pivot, killed, parent]
        .map(|line| workshop::net::run(sh, &["-c", line, "run"], LIMIT));
    let todo = workshop::net::run(&todo, &["run", "true"], LIMIT);
    host.assert_unchanged("the net");
    assert_eq!(detach.harm.len(), 1, "{:?}", detach.harm);
    assert!(detach.harm[0].ends_with(" sleep (killed now)"), "{:?}", detach.harm);
    let moved = "your program moved the host's root: pivot_root(2) must run in a new mount \
                 namespace (CLONE_NEWNS)";
    assert_eq!((pivot.output.as_str(), pivot.harm), ("", vec![moved.to_string()]));
    assert_eq!((killed.output.as_str(), killed.status), ("", 137));
    let net = [" run", "timeout", "BYOC_"].iter().any(|net| parent.output.contains(net));
    assert!(!net, "the program's parent: {}", parent.output);
    let lines: Vec<&str> = todo.output.lines().collect();
    assert_eq!(lines.len(), 1, "{}", todo.output);
    assert!(lines[0].contains(": not yet implemented: 4.4: "), "{}", todo.output);
    assert!(lines[0].ends_with("[in the child that clone(2) started, where a panic aborts]"));
}

/// A time limit for a run by hand in a test.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

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
chown -R 65534:65534 "$project/rootfs" "$project/target/attack-rootfs"
# A checkout in a private directory (a home of mode 700 or 750): here, the highest of its
# parents that nobody may not enter is a tmpfs with the path down to the checkout in it, so
# that everything the run uses under the checkout (safety-net.sh, the programs, the rootfs)
# is nobody's to reach, and the real parents stay as they are.
top= dir=$project
while [ "$dir" != / ]; do
    dir=$(dirname "$dir")
    setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$dir" || top=$dir
done
if [ -n "$top" ]; then
    # Held by the working directory: the tmpfs may hide the scratch directory too.
    mkdir "$scratch/checkout"
    mount --rbind "$project" "$scratch/checkout"
    cd "$scratch/checkout"
    mount -t tmpfs -o mode=755 tmpfs "$top"
    mkdir -p "$project"
    mount --rbind . "$project"
fi
cd "$project""#;

/// In the environment of this test's own copy that runs as the learner: the checks to run, a
/// line `STAGE PROGRAM` each.
const CHECKS_AS_THE_LEARNER: &str = "BYOC_CHECKS_AS_THE_LEARNER";

/// What that copy prints before each check's verdict.
const VERDICT: &str = "=== verdict\n";

/// Without root (book: Workshop, Without root), `just check` runs as the learner, and each
/// stage's safety net is a user namespace of theirs. Checked here as user `nobody`, by a copy
/// of this test run as `nobody`: the reference passes every stage of steps 1 to 4 (2.4 and
/// 4.3 but for the parts that need root, which they name), step 5's stages say they need
/// root, and every mistake is still caught, and named, but those that only root sees
/// (`--user`, `--userns-remap`, the devices that mknod makes), which `Mistake::needs_root`
/// names.
#[test]
fn without_root_the_checks_still_judge() {
    if let Ok(checks) = std::env::var(CHECKS_AS_THE_LEARNER) {
        // The copy, as the learner: each check in turn, as `just check` runs it.
        for check in checks.lines() {
            let (id, program) = check.split_once(' ').unwrap();
            let id: StageId = id.parse().unwrap();
            let stage = STAGES.iter().find(|stage| stage.id == id).unwrap();
            print!("{VERDICT}");
            workshop::learner::check_stage(
                stage,
                Path::new(program),
                None,
                None,
                &mut std::io::stdout(),
            );
        }
        return;
    }
    rootfs_ready();
    // Each run: the stage, the program, the verdict it must get, and what its message says.
    let mut runs: Vec<(StageId, PathBuf, &str, &str)> = Vec::new();
    for stage in STAGES {
        let verdict = if stage.id.step == 5 { "- " } else { "✔ " };
        runs.push((stage.id, PathBuf::from(reference(stage.id)), verdict, ""));
    }
    let caught = MISTAKES.iter().filter(|mistake| {
        !mistake.needs_root() && mistake.applies_here() && mistake.stage.step < 5
    });
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
        assert!(report.starts_with(&wanted), "{}, without root:\n{report}", program.display());
        assert!(
            report.contains(says),
            "{}, without root, says no {says:?}:\n{report}",
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
