//! The cgroup module's unit tests: the same code, run against a fake /sys/fs/cgroup in a
//! temporary directory, with the /proc files of a hybrid machine and of a v2 laptop.
//! `cargo test --bin step5` runs them, no root needed.

use super::robustness::remove_stale;
use super::trees::{layout, mounts};
use super::*;
use crate::filesystems::parse_size;
use crate::limits::{parse_cpus, parse_pids};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::Duration;

/// A temporary directory that plays /sys/fs/cgroup; removed when dropped. Unlike cgroupfs,
/// mkdir makes no control files in it: `write` creates them and the tests read them back.
struct Fake(PathBuf);

impl Fake {
    fn new() -> Fake {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("byoc-test-{}-{n}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        Fake(root)
    }

    fn file(&self, path: &str, text: &str) {
        let path = self.0.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn read(&self, path: impl AsRef<Path>) -> String {
        fs::read_to_string(self.0.join(path)).unwrap()
    }

    /// Like this machine: v1 trees for memory, pids and cpu,cpuacct, and an empty v2 tree.
    fn hybrid(&self) -> String {
        self.file("unified/cgroup.controllers", "hugetlb\n");
        for dir in ["memory/process_api/abc", "memory/my/parent", "pids", "cpu,cpuacct"] {
            fs::create_dir_all(self.0.join(dir)).unwrap();
        }
        let r = self.0.display();
        format!(
            "22 1 0:21 / /proc rw - proc proc rw\n\
             35 31 0:32 / {r}/memory rw - cgroup cgroup rw,memory\n\
             39 31 0:36 / {r}/pids rw - cgroup cgroup rw,pids\n\
             32 31 0:29 / {r}/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             40 31 0:37 / {r}/systemd rw - cgroup cgroup rw,name=systemd\n\
             41 31 0:38 / {r}/unified rw - cgroup2 cgroup2 rw\n"
        )
    }

    /// Like a laptop: a single v2 tree, and we run in a session scope.
    fn v2(&self, controllers: &str) -> String {
        self.file("cgroup.controllers", controllers);
        self.file("user.slice/session-2.scope/cgroup.procs", "1234\n");
        format!("30 23 0:26 / {} rw - cgroup2 cgroup2 rw\n", self.0.display())
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const HYBRID_CGROUP: &str = "8:pids:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/\n";
const V2_CGROUP: &str = "0::/user.slice/session-2.scope\n";
const LIMITS: Limits = Limits { memory: Some(100 << 20), pids: Some(20), cpus: Some(0.5) };

/// Remove a cgroup made in a fake tree, twice. The kernel deletes the control files with
/// their cgroup; here the test does.
fn remove_fake(mut cgroup: Cgroup) {
    let dirs = cgroup.dirs().to_vec();
    for file in dirs.iter().flat_map(|dir| fs::read_dir(dir).unwrap()) {
        fs::remove_file(file.unwrap().path()).unwrap();
    }
    cgroup.remove().unwrap();
    cgroup.remove().unwrap();
    assert!(dirs.iter().all(|dir| !dir.exists()));
}

#[test]
fn detects_the_layout() {
    let (hybrid, v2) = (Fake::new(), Fake::new());
    let v1 = hybrid.hybrid().replace("cgroup2", "ext4");
    assert_eq!(layout(&mounts(&hybrid.hybrid())), "hybrid");
    assert_eq!(layout(&mounts(&v1)), "v1");
    assert_eq!(layout(&mounts(&v2.v2("memory pids"))), "v2");
    assert_eq!(layout(&mounts("22 1 0:21 / /proc rw - proc proc rw")), "none");
}

#[test]
fn hybrid_uses_the_v1_trees_beneath_our_own_cgroups() {
    let fake = Fake::new();
    let cgroup = Cgroup::create_from(&fake.hybrid(), HYBRID_CGROUP, &LIMITS, None, false);
    let cgroup = cgroup.unwrap();
    let name = format!("byoc-{}", std::process::id());
    let memory = Path::new("memory/process_api/abc").join(&name);
    let (pids, cpu) = (Path::new("pids").join(&name), Path::new("cpu,cpuacct").join(&name));
    assert_eq!(cgroup.dirs(), [&memory, &pids, &cpu].map(|dir| fake.0.join(dir)));
    assert_eq!(fake.read(memory.join("memory.limit_in_bytes")), "104857600");
    assert_eq!(fake.read(memory.join("memory.swappiness")), "0"); // the fake has no memsw
    assert_eq!(fake.read(pids.join("pids.max")), "20");
    assert_eq!(fake.read(cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(fake.read(cpu.join("cpu.cfs_quota_us")), "50000");
    join(cgroup.dirs()).unwrap();
    assert_eq!(fake.read(pids.join("cgroup.procs")), "0");
    remove_fake(cgroup);
}

#[test]
fn v2_enables_the_controllers_in_the_root_and_byoc() {
    let fake = Fake::new();
    let mountinfo = fake.v2("cpuset cpu io memory hugetlb pids rdma misc\n");
    let cgroup = Cgroup::create_from(&mountinfo, V2_CGROUP, &LIMITS, None, false).unwrap();
    let dir = Path::new("byoc").join(format!("byoc-{}", std::process::id()));
    assert_eq!(cgroup.dirs(), [fake.0.join(&dir)]);
    assert_eq!(fake.read("cgroup.subtree_control"), "+memory +pids +cpu");
    assert_eq!(fake.read("byoc/cgroup.subtree_control"), "+memory +pids +cpu");
    assert_eq!(fake.read(dir.join("memory.max")), "104857600");
    assert_eq!(fake.read(dir.join("pids.max")), "20");
    assert_eq!(fake.read(dir.join("cpu.max")), "50000 100000");
    remove_fake(cgroup);
}

/// Two other runtimes start and end containers all the time, each as step 5 does: make
/// /byoc (or find it made), make its cgroup in it, remove that, remove /byoc (or find
/// another container in it). Ours race with theirs for /byoc, and every one succeeds.
#[test]
fn survives_other_containers_making_and_removing_byoc() {
    use std::sync::atomic::AtomicBool;
    let fake = Fake::new();
    let mountinfo = fake.v2("memory pids\n");
    let byoc = fake.0.join("byoc");
    let done = AtomicBool::new(false);
    // Named after live processes, so that our remove_stale leaves them alone.
    let others = [1, std::os::unix::process::parent_id()].map(|pid| format!("byoc-{pid}"));
    std::thread::scope(|scope| {
        for other in &others {
            let (byoc, done) = (&byoc, &done);
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let _ = fs::create_dir(byoc);
                    if fs::create_dir(byoc.join(other)).is_ok() {
                        // The container runs, a little longer than it takes to start one:
                        // with containers that end as soon as they start, a run on a loaded
                        // machine could lose the race ten times in a row (no real one could).
                        sleep(Duration::from_micros(300));
                        fs::remove_dir(byoc.join(other)).unwrap();
                    }
                    // cgroupfs removes a cgroup's files with it; in the fake, we do.
                    let _ = fs::remove_file(byoc.join("cgroup.subtree_control"));
                    let _ = fs::remove_dir(byoc); // fails while a container is inside
                }
            });
        }
        let memory = Limits { memory: Some(1 << 30), ..Limits::default() };
        for _ in 0..300 {
            let cgroup = Cgroup::create_from(&mountinfo, V2_CGROUP, &memory, None, false);
            let cgroup = cgroup.inspect_err(|_| done.store(true, Ordering::Relaxed)).unwrap();
            remove_fake(cgroup);
        }
        done.store(true, Ordering::Relaxed);
    });
}

#[test]
fn swap_is_turned_off_after_the_memory_limit() {
    let fake = Fake::new();
    fake.file("v1/memory.memsw.limit_in_bytes", "");
    fake.file("v2/memory.swap.max", "");
    let files = |v2: bool, dir: &str| -> Vec<String> {
        let (mount, own) = (fake.0.clone(), String::new());
        let tree = Tree { v2, mount, controllers: vec!["memory"], own };
        let files = limit_files(&tree, &fake.0.join(dir), &LIMITS).into_iter();
        let short = |file: PathBuf| file.strip_prefix(&fake.0).unwrap().display().to_string();
        files.map(|(file, value)| format!("{}={value}", short(file))).collect()
    };
    let v1 = ["v1/memory.limit_in_bytes=104857600", "v1/memory.memsw.limit_in_bytes=104857600"];
    assert_eq!(files(false, "v1"), v1);
    assert_eq!(files(true, "v2"), ["v2/memory.max=104857600", "v2/memory.swap.max=0"]);
}

#[test]
fn cgroup_parent_must_exist() {
    let fake = Fake::new();
    let memory = Limits { memory: Some(1 << 30), ..Limits::default() };
    let create =
        |parent| Cgroup::create_from(&fake.hybrid(), HYBRID_CGROUP, &memory, parent, false);
    let error = create(Some("/no/such")).unwrap_err();
    assert!(error.to_string().contains("memory/no/such\""), "{error}");
    let cgroup = create(Some("/my/parent")).unwrap();
    assert_eq!(cgroup.dirs()[0].parent(), Some(fake.0.join("memory/my/parent").as_path()));
    remove_fake(cgroup);
}

#[test]
fn a_missing_controller_is_an_error() {
    let fake = Fake::new();
    let error = Cgroup::create_from(&fake.v2("cpu io pids\n"), V2_CGROUP, &LIMITS, None, false);
    let expected = "no cgroup tree offers the memory controller (layout: v2)";
    assert_eq!(error.unwrap_err().to_string(), expected);
}

const MEMORY_AND_PIDS: Limits = Limits { memory: Some(100 << 20), pids: Some(20), cpus: None };

#[test]
fn rootless_refuses_limits_on_cgroup_v1() {
    let fake = Fake::new();
    let error = Cgroup::create_from(&fake.hybrid(), HYBRID_CGROUP, &MEMORY_AND_PIDS, None, true);
    let expected = format!(
        "rootless, cgroup limits need cgroup v2; the memory controller is on cgroup v1 here, at \
         {:?}, where a user may make no cgroup",
        fake.0.join("memory")
    );
    assert_eq!(error.unwrap_err().to_string(), expected);
}

/// Rootless: the container's cgroup goes beside a leaf that the runtime moved itself into,
/// in the cgroup it runs in, and all of it is undone at the end.
#[test]
fn rootless_uses_the_cgroup_delegated_to_it_and_leaves_it_as_found() {
    let fake = Fake::new();
    let mountinfo = fake.v2("memory pids\n");
    fake.file("user.slice/session-2.scope/cgroup.controllers", "memory pids\n");
    let cgroup = Cgroup::create_from(&mountinfo, V2_CGROUP, &MEMORY_AND_PIDS, None, true).unwrap();
    let own = Path::new("user.slice/session-2.scope");
    let leaf = own.join(format!("runtime-{}", std::process::id()));
    let dir = own.join(format!("byoc-{}", std::process::id()));
    assert_eq!(cgroup.dirs(), [fake.0.join(&dir)]);
    assert_eq!(fake.read(leaf.join("cgroup.procs")), "0");
    assert_eq!(fake.read(own.join("cgroup.subtree_control")), "+memory +pids");
    assert_eq!(fake.read(dir.join("memory.max")), "104857600");
    assert_eq!(fake.read(dir.join("pids.max")), "20");
    assert!(!fake.0.join("byoc").exists(), "rootless, nothing is made at the root");
    fs::remove_file(fake.0.join(leaf.join("cgroup.procs"))).unwrap(); // as the kernel would
    remove_fake(cgroup);
    assert_eq!(fake.read(own.join("cgroup.subtree_control")), "-memory -pids");
    assert_eq!(fake.read(own.join("cgroup.procs")), "0");
    assert!(!fake.0.join(leaf).exists());
}

#[test]
fn rootless_needs_a_cgroup_delegated_to_it_with_the_controllers() {
    let fake = Fake::new();
    let mountinfo = fake.v2("memory pids\n");
    fake.file("user.slice/session-2.scope/cgroup.controllers", "pids\n");
    let create = || Cgroup::create_from(&mountinfo, V2_CGROUP, &MEMORY_AND_PIDS, None, true);
    let own = fake.0.join("user.slice/session-2.scope");
    let expected = format!("the memory controller is not delegated to you in {own:?}");
    assert_eq!(create().unwrap_err().to_string(), expected);

    // A cgroup that is not ours: only root can give the fake's file away (the suite runs as root).
    if !nix::unistd::Uid::effective().is_root() {
        return;
    }
    std::os::unix::fs::chown(own.join("cgroup.procs"), Some(65534), None).unwrap();
    let expected =
        format!("rootless, cgroup limits need a cgroup delegated to you: {own:?} is not");
    assert_eq!(create().unwrap_err().to_string(), expected);
    assert_eq!(fs::read_dir(&own).unwrap().count(), 2, "nothing made");
}

fn oom_report(events_file: &str, events: &str, peak_file: &str) -> Option<String> {
    let fake = Fake::new();
    fake.file(events_file, events);
    fake.file(peak_file, "104857600\n");
    let memory = Some((fake.0.clone(), 100 << 20));
    Cgroup { dirs: Vec::new(), byoc: None, memory, delegated: None }.oom_report()
}

/// The numbers a report gives, but the limit's and the peak's (100 MiB here): its count.
fn counts(report: &str) -> Vec<u64> {
    let words = report.split(|c: char| !c.is_ascii_digit());
    words.filter_map(|word| word.parse().ok()).filter(|n| *n != 100).collect()
}

/// A report says that the OOM killer killed, whatever its words.
fn is_a_report(report: &str) -> bool {
    let report = report.to_lowercase();
    report.contains("oom") && report.contains("kill")
}

#[test]
fn oom_report_counts_the_kills() {
    let v2 = |events| oom_report("memory.events", events, "memory.peak");
    assert_eq!(v2("oom 0\noom_kill 0\noom_group_kill 0\n"), None, "no kill, no report");
    let one = v2("oom 1\noom_kill 1\noom_group_kill 0\n").unwrap();
    assert!(is_a_report(&one) && counts(&one) == [1], "{one}");
    let events = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
    let v1 = oom_report("memory.oom_control", events, "memory.max_usage_in_bytes").unwrap();
    assert!(is_a_report(&v1) && counts(&v1) == [2], "{v1}");
    // memory.oom.group on a 6.1 kernel: 3 processes killed, the first counted twice, so the
    // count is no count of processes: the report gives none.
    let group = v2("oom 1\noom_kill 4\noom_group_kill 1\n").unwrap();
    assert!(is_a_report(&group) && counts(&group).is_empty(), "{group}");
}

#[test]
fn parses_limits() {
    assert_eq!(parse_size("100m"), Ok(100 << 20));
    assert_eq!(parse_size("1G"), Ok(1 << 30));
    assert_eq!(parse_size("512k"), Ok(512 << 10));
    assert_eq!(parse_size("4096"), Ok(4096));
    for bad in ["100q", "-1", "0", "", "m", "1.5g", "99999999999g"] {
        assert!(parse_size(bad).unwrap_err().contains("like 100m"), "{bad}");
    }
    assert_eq!(parse_cpus("0.5"), Ok(0.5));
    assert!(["0", "-1", "nan", "inf", "half"].iter().all(|bad| parse_cpus(bad).is_err()));
    assert_eq!(parse_pids("20"), Ok(20));
    assert!(["0", "-1", "2.5"].iter().all(|bad| parse_pids(bad).is_err()));
}

#[test]
fn removes_only_dead_empty_byoc_cgroups() {
    let fake = Fake::new();
    // 999999999 is above the largest pid Linux allows (2^22): surely not running.
    let alive = format!("byoc-{}", std::os::unix::process::parent_id());
    let ours = format!("byoc-{}", std::process::id());
    let dirs = [&alive, &ours, "byoc-999999999", "byoc-999999998", "byoc-abc", "other-999999999"];
    for dir in dirs {
        fs::create_dir(fake.0.join(dir)).unwrap();
    }
    fake.file("byoc-999999998/cgroup.procs", "42\n"); // not empty
    remove_stale(&fake.0);
    assert!(!fake.0.join("byoc-999999999").exists());
    assert!(!fake.0.join(&ours).exists(), "a stale cgroup with our own PID stays");
    for kept in [&alive, "byoc-999999998", "byoc-abc", "other-999999999"] {
        assert!(fake.0.join(kept).exists(), "{kept}");
    }
}
