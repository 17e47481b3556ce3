//! The harness judges a run by what *it* left on the host: its processes, its
//! mounts, its cgroups. Beside another runtime whose containers start and stop
//! all the time (`tests/tools/other-runtime.sh`, like Docker on a learner's
//! machine), a clean run of ours passes, and a leak of ours of each kind is
//! still caught.

mod common;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Child, Command};

use common::{HostState, STEPS};

/// The other runtime, started and stopped around a test.
struct OtherRuntime(Child);

impl OtherRuntime {
    fn start() -> OtherRuntime {
        let script = Path::new(common::PROJECT).join("tests/tools/other-runtime.sh");
        let runtime = Command::new(script).spawn().expect("tests/tools/other-runtime.sh");
        // Wait until its containers are running: each makes a mount under /run.
        let mounts = format!("/run/byoc-other-runtime/{}/", runtime.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !common::mount_table().contains(&mounts) {
            assert!(std::time::Instant::now() < deadline, "the other runtime never started");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        OtherRuntime(runtime)
    }
}

impl Drop for OtherRuntime {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

/// `host.assert_unchanged` after `leak` ran: the panic message, or None.
fn verdict(leak: &str) -> Option<String> {
    let host = HostState::now();
    let status = Command::new("sh").args(["-c", leak]).current_dir(common::PROJECT).status();
    assert!(status.unwrap().success(), "{leak}");
    let caught = catch_unwind(AssertUnwindSafe(|| host.assert_unchanged("the leak")));
    caught.err().map(|panic| match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(_) => "a panic without a message".to_string(),
    })
}

#[test]
fn another_runtime_beside_us_neither_fails_a_run_nor_hides_a_leak() {
    common::require_root();
    common::require_rootfs();
    let other = {
        let _turn = HostState::now(); // its process is started, like every other, in turn
        OtherRuntime::start()
    };

    // Our runs pass beside it, however many PID namespaces, mounts and cgroups it makes.
    for step in STEPS {
        let args: &[&str] = match step.number {
            5 => &["run", "--memory", "100m", "--pids", "20", "true"],
            _ => &["run", "true"],
        };
        assert_eq!(step.run(args).status, 0, "{}", step.name);
    }

    // A process of ours left running.
    let left = verdict("sleep 60 &").expect("a process left behind was not caught");
    assert!(left.contains("left processes running") && left.contains("sleep"), "{left}");

    // A mount of ours left on the host, where ours would be: beneath the
    // checkout, or beneath a scratch directory (a copy for nobody, a rootfs
    // with a planted file).
    let points = [
        Path::new(common::PROJECT).join("target/byoc-leaked-mount"),
        common::scratch_dir("leaked-mount"),
    ];
    for point in points {
        fs::create_dir_all(&point).unwrap();
        let leak = format!("mount -t tmpfs byoc-leak {}", point.display());
        let left = verdict(&leak).expect("a mount left behind was not caught");
        Command::new("umount").arg(&point).status().unwrap();
        fs::remove_dir(&point).unwrap();
        assert!(
            left.contains("changed the host's mount table") && left.contains("byoc-leak"),
            "{}: {left}",
            point.display()
        );
    }

    // A cgroup of ours left behind, named after a runtime that is gone.
    let own = common::own_memory_cgroup().expect("this test needs a memory cgroup tree");
    let leak = format!("mkdir {}/byoc-$$", own.display());
    let left = verdict(&leak).expect("a cgroup left behind was not caught");
    for cgroup in common::workbook_cgroups() {
        if left.contains(&cgroup.display().to_string()) {
            fs::remove_dir(&cgroup).unwrap();
        }
    }
    assert!(left.contains("left cgroups behind"), "{left}");

    let _turn = HostState::now();
    drop(other);
}
