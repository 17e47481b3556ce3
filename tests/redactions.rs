//! The transcripts' redactions (`common::REDACTIONS`) hide what varies by wall
//! time, kernel or machine, and only that. For each, on a real snapshot: the
//! values a run may show redact to the snapshot, and a real change of
//! behaviour still fails it.

mod common;

use common::{redact, snapshot_body as snapshot};

/// `snapshot` with `from` replaced by `to` once, as a run might have shown it.
fn shown(snapshot: &str, from: &str, to: &str) -> String {
    assert!(snapshot.contains(from), "the snapshot has no {from:?}:\n{snapshot}");
    snapshot.replacen(from, to, 1)
}

#[test]
fn the_runtimes_pid_is_redacted_but_not_the_containers() {
    let verbose = snapshot("run__step4_verbose");
    let runtime = "Exited(Pid([PID]), 0)";
    assert_eq!(redact(&shown(&verbose, runtime, "Exited(Pid(4242), 0)")), verbose);
    assert_eq!(redact(&shown(&verbose, runtime, "Exited(Pid(3999999), 0)")), verbose);
    // The runtime's child ended otherwise; the command is not PID 2.
    assert_ne!(redact(&shown(&verbose, runtime, "Exited(Pid(4242), 1)")), verbose);
    assert_ne!(redact(&shown(&verbose, "Exited(Pid(2), 0)", "Exited(Pid(3), 0)")), verbose);

    let step3 = snapshot("run__step3_verbose");
    assert_eq!(redact(&shown(&step3, "waitpid([PID], 0)", "waitpid(31337, 0)")), step3);
    assert_ne!(redact(&shown(&step3, "Exited(Pid([PID]), 0)", "Signaled(Pid(31337)")), step3);
}

#[test]
fn the_random_hostname_is_redacted_but_not_a_chosen_one() {
    let verbose = snapshot("run__step4_verbose");
    let random = "sethostname(\"[RANDOM-ID]\")";
    assert_eq!(redact(&shown(&verbose, random, "sethostname(\"0f3a9c21b7d4\")")), verbose);
    assert_ne!(redact(&shown(&verbose, random, "sethostname(\"box\")")), verbose);
    assert_ne!(redact(&shown(&verbose, random, "sethostname(\"0f3a9c21b7d4e5\")")), verbose);
}

#[test]
fn stress_time_is_redacted_but_not_its_verdict() {
    for (name, verdict) in
        [("cgroups__step5_oom", "failed"), ("cgroups__step5_enough_memory", "successful")]
    {
        let stress = snapshot(name);
        let time = format!("{verdict} run completed in [N]s");
        for seconds in ["0", "1", "2", "17"] {
            let run = shown(&stress, &time, &format!("{verdict} run completed in {seconds}s"));
            assert_eq!(redact(&run), stress);
        }
        let other = if verdict == "failed" { "successful" } else { "failed" };
        let run = shown(&stress, &time, &format!("{other} run completed in 1s"));
        assert_ne!(redact(&run), stress);
    }
}

/// Kernels differ in which of the paths that step 4 protects they have: this
/// one has no /proc/sysrq-trigger, /proc/kcore or /proc/scsi, stock Debian and
/// Ubuntu kernels have them (and a machine with a sound card /proc/asound).
/// Their lines go only when they are protected: read-only, or masked read-only.
#[test]
fn kernel_optional_paths_are_redacted_only_when_protected() {
    let mounts = snapshot("environment__step4_mounts");
    let sys = mounts.lines().find(|line| line.contains(" on /proc/sys ")).unwrap().to_string();
    let optional = [
        "proc on /proc/sysrq-trigger type proc",
        "tmpfs on /proc/kcore type tmpfs",
        "tmpfs on /proc/scsi type tmpfs",
        "tmpfs on /proc/asound type tmpfs",
        "tmpfs on /sys/devices/virtual/powercap type tmpfs",
    ];
    for line in optional {
        let with = |flags: &str| format!("{sys}\n{line} ({flags})");
        let protected = with("ro,nosuid,nodev,noexec,relatime");
        assert_eq!(redact(&shown(&mounts, &sys, &protected)), mounts, "{line}");
        let writable = with("rw,nosuid,nodev,noexec,relatime");
        assert_ne!(redact(&shown(&mounts, &sys, &writable)), mounts, "{line}");
    }
    // A path every kernel has is never redacted, however it is mounted.
    let keys = mounts.lines().find(|line| line.contains(" on /proc/keys ")).unwrap();
    assert_ne!(redact(&shown(&mounts, &format!("{keys}\n"), "")), mounts);
    // And /proc/sys itself made writable still fails.
    assert_ne!(redact(&shown(&mounts, &sys, &sys.replace("(ro,", "(rw,"))), mounts);
}

/// `option`, added to the mount `line` of `snapshot` by a kernel, is redacted; and with `kept`
/// taken away as well, the snapshot no longer matches: the redaction hides that option alone.
fn only_the_option_is_redacted(snapshot: &str, line: &str, option: &str, kept: &str) {
    let with = line.replace(')', &format!(",{option})"));
    assert_eq!(redact(&shown(snapshot, line, &with)), snapshot, "{line}");
    let without = with.replace(&format!("{kept},"), "");
    assert_ne!(redact(&shown(snapshot, line, &without)), snapshot, "{line} without {kept}");
}

/// Kernels built with CONFIG_TMPFS_INODE64 (stock Debian's) add `inode64` to
/// every tmpfs's options; this one does not. It goes, and nothing else does.
#[test]
fn tmpfs_inode64_is_redacted_but_not_the_other_options() {
    let mounts = snapshot("environment__step4_mounts");
    for point in ["/dev", "/dev/shm", "/tmp"] {
        let line = mounts.lines().find(|line| line.contains(&format!(" on {point} "))).unwrap();
        only_the_option_is_redacted(&mounts, line, "inode64", "nosuid");
    }
}

/// Newer kernels show overlayfs's `uuid=on` unasked; Debian 12's 6.1 does not. It goes, and
/// nothing else of the layer's options does.
#[test]
fn overlay_uuid_is_redacted_but_not_the_other_options() {
    for step in [4, 5] {
        let mount = snapshot(&format!("environment__step{step}_root_mount"));
        let line = mount.lines().find(|line| line.starts_with("overlay on / ")).unwrap();
        only_the_option_is_redacted(&mount, line, "uuid=on", "nodev");
    }
}

/// The narration of the same paths: each mount that protects one goes when it worked, and
/// only then.
#[test]
fn kernel_optional_paths_in_the_narration_are_redacted_only_when_protected() {
    let verbose = snapshot("run__step4_verbose");
    let sys = verbose.lines().find(|line| line.contains("(NULL, \"proc/sys\"")).unwrap();
    let protected = [
        "=> mount(\"proc/sysrq-trigger\", \"proc/sysrq-trigger\", NULL, MS_BIND|MS_REC, NULL) = 0  # read-only, else it could press the host's magic SysRq key: reboot it, crash it",
        "=> mount(NULL, \"proc/sysrq-trigger\", NULL, MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND, NULL) = 0",
        "=> mount(\"dev/null\", \"proc/kcore\", NULL, MS_BIND, NULL) = 0  # hidden: the host's memory, as a core file",
        "=> mount(\"tmpfs\", \"proc/scsi\", \"tmpfs\", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, \"mode=755\") = 0  # hidden: the host's disks: a write to /proc/scsi/scsi detaches one",
    ];
    for line in protected {
        let run = shown(&verbose, sys, &format!("{sys}\n{line}"));
        assert_eq!(redact(&run), verbose, "{line}");
        let refused = line.replacen(") = 0", ") = EPERM", 1);
        let run = shown(&verbose, sys, &format!("{sys}\n{refused}"));
        assert_ne!(redact(&run), verbose, "{refused}");
    }
    // A path every kernel has is never redacted.
    let keys = verbose.lines().find(|line| line.contains("\"proc/keys\"")).unwrap();
    assert!(redact(&verbose).contains(keys), "{keys}");
}

/// Step 5's cgroup is `byoc-<the runtime's PID>`: the number goes, the name
/// and where it is stay.
#[test]
fn the_cgroups_pid_is_redacted_but_not_its_place() {
    let verbose = snapshot("cgroups__step5_verbose_v2");
    let made = "mkdir(\"/sys/fs/cgroup/byoc/byoc-[PID]\")";
    assert_eq!(redact(&shown(&verbose, made, "mkdir(\"/sys/fs/cgroup/byoc/byoc-4242\")")), verbose);
    let elsewhere = "mkdir(\"/sys/fs/cgroup/user.slice/byoc-4242\")";
    assert_ne!(redact(&shown(&verbose, made, elsewhere)), verbose);
    assert_ne!(
        redact(&shown(&verbose, made, "mkdir(\"/sys/fs/cgroup/byoc/other-4242\")")),
        verbose
    );
}

/// Rootless, the runtime writes its child's maps in /proc/PID: the PID goes,
/// the file and what is written stay.
#[test]
fn the_childs_pid_in_the_maps_is_redacted_but_not_the_maps() {
    let verbose = snapshot("rootless__step2_verbose");
    let uid_map = "write(\"/proc/[PID]/uid_map\", \"0 65534 1\")";
    assert_eq!(
        redact(&shown(&verbose, uid_map, "write(\"/proc/4242/uid_map\", \"0 65534 1\")")),
        verbose
    );
    assert_ne!(
        redact(&shown(&verbose, uid_map, "write(\"/proc/4242/uid_map\", \"0 0 1\")")),
        verbose
    );
    assert_ne!(
        redact(&shown(&verbose, uid_map, "write(\"/proc/self/uid_map\", \"0 65534 1\")")),
        verbose
    );
    let setgroups = "write(\"/proc/[PID]/setgroups\", \"deny\")";
    assert_ne!(
        redact(&shown(&verbose, setgroups, "write(\"/proc/4242/setgroups\", \"allow\")")),
        verbose
    );
    // With a range of IDs, the helpers write them, given the PID (as tests/rootless.rs's
    // with_ids_of_its_own_the_container_has_users narrates them).
    let helper = "=> newuidmap([PID], 0, 65534, 1, 1, 200000, 65536) = 0";
    assert_eq!(redact("=> newuidmap(4242, 0, 65534, 1, 1, 200000, 65536) = 0"), helper);
    assert_ne!(redact("=> newuidmap(4242, 0, 65534, 1, 1, 200000, 1) = 0"), helper);
    assert_ne!(redact("=> newgidmap(4242, 0, 65534, 1, 1, 200000, 65536) = 0"), helper);
    assert_ne!(redact("=> newuidmap(42, 0, 65534, 1, 1, 200000, 65536) = 0"), helper);
}

/// What one of `common::REDACTIONS` must do, on a line of a real snapshot.
struct Example {
    /// The snapshot the line is from.
    snapshot: &'static str,
    /// The line as the snapshot has it, redacted.
    redacted: &'static str,
    /// The line as a run may show it: this redaction, alone, must make it `redacted`.
    shown: &'static str,
    /// A real change of behaviour on the line, which must still fail the snapshot.
    changed: &'static str,
}

/// One example for each of `common::REDACTIONS`, in their order: the nine kinds that the
/// tests above show on whole snapshots (the PID takes two, the child's maps two).
const EXAMPLES: [Example; 11] = [
    Example {
        snapshot: "run__step3_verbose",
        redacted: "=> waitpid([PID], 0) = Exited(Pid([PID]), 0)",
        shown: "=> waitpid(31337, 0) = Exited(Pid([PID]), 0)",
        changed: "=> waitpid(31337, 0) = Exited(Pid([PID]), 1)",
    },
    Example {
        snapshot: "run__step4_verbose",
        redacted: "=> waitpid([PID], 0) = Exited(Pid([PID]), 0)",
        shown: "=> waitpid([PID], 0) = Exited(Pid(4242), 0)",
        changed: "=> waitpid([PID], 0) = Exited(Pid(42), 0)",
    },
    Example {
        snapshot: "rootless__step2_verbose",
        redacted: "=> write(\"/proc/[PID]/uid_map\", \"0 65534 1\") = 0",
        shown: "=> write(\"/proc/4242/uid_map\", \"0 65534 1\") = 0",
        changed: "=> write(\"/proc/self/uid_map\", \"0 65534 1\") = 0",
    },
    Example {
        snapshot: "rootless__step4_subordinate_ids_verbose",
        redacted: "=> newuidmap([PID], 0, 65534, 1, 1, 200000, 65536) = 0",
        shown: "=> newuidmap(4242, 0, 65534, 1, 1, 200000, 65536) = 0",
        changed: "=> newuidmap(4242, 0, 65534, 1, 1, 200000, 1) = 0",
    },
    Example {
        snapshot: "cgroups__step5_verbose_v2",
        redacted: "=> mkdir(\"/sys/fs/cgroup/byoc/byoc-[PID]\") = 0",
        shown: "=> mkdir(\"/sys/fs/cgroup/byoc/byoc-4242\") = 0",
        changed: "=> mkdir(\"/sys/fs/cgroup/user.slice/byoc-4242\") = 0",
    },
    Example {
        snapshot: "run__step4_verbose",
        redacted: "=> sethostname(\"[RANDOM-ID]\") = 0",
        shown: "=> sethostname(\"0f3a9c21b7d4\") = 0",
        changed: "=> sethostname(\"0f3a9c21b7d4e5\") = 0",
    },
    Example {
        snapshot: "cgroups__step5_enough_memory",
        redacted: "stress: info: [2] successful run completed in [N]s",
        shown: "stress: info: [2] successful run completed in 1s",
        changed: "stress: info: [2] failed run completed in 1s",
    },
    Example {
        snapshot: "environment__step4_mounts",
        redacted: "tmpfs on /proc/acpi type tmpfs (ro,nosuid,nodev,noexec,relatime,mode=755)",
        shown: "proc on /proc/sysrq-trigger type proc (ro,nosuid,nodev,noexec,relatime)\n\
                tmpfs on /proc/acpi type tmpfs (ro,nosuid,nodev,noexec,relatime,mode=755)",
        changed: "proc on /proc/sysrq-trigger type proc (rw,nosuid,nodev,noexec,relatime)\n\
                  tmpfs on /proc/acpi type tmpfs (ro,nosuid,nodev,noexec,relatime,mode=755)",
    },
    Example {
        snapshot: "run__step4_verbose",
        redacted: "=> mount(\"tmpfs\", \"proc/acpi\", \"tmpfs\", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, \"mode=755\") = 0  # hidden: the host's power management, some of it writable",
        shown: "=> mount(\"dev/null\", \"proc/kcore\", NULL, MS_BIND, NULL) = 0  # hidden: the host's memory, as a core file\n\
                => mount(\"tmpfs\", \"proc/acpi\", \"tmpfs\", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, \"mode=755\") = 0  # hidden: the host's power management, some of it writable",
        changed: "=> mount(\"dev/null\", \"proc/kcore\", NULL, MS_BIND, NULL) = EPERM  # hidden: the host's memory, as a core file\n\
                  => mount(\"tmpfs\", \"proc/acpi\", \"tmpfs\", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC, \"mode=755\") = 0  # hidden: the host's power management, some of it writable",
    },
    Example {
        snapshot: "environment__step4_mounts",
        redacted: "tmpfs on /tmp type tmpfs (rw,nosuid,nodev,relatime,size=262144k,nr_inodes=65536)",
        shown: "tmpfs on /tmp type tmpfs (rw,nosuid,nodev,relatime,size=262144k,nr_inodes=65536,inode64)",
        changed: "tmpfs on /tmp type tmpfs (rw,nodev,relatime,size=262144k,nr_inodes=65536,inode64)",
    },
    Example {
        snapshot: "environment__step4_root_mount",
        redacted: "overlay on / type overlay (rw,nodev,relatime,lowerdir=/proc/self/fd/4,upperdir=upper,workdir=work)",
        shown: "overlay on / type overlay (rw,nodev,relatime,lowerdir=/proc/self/fd/4,upperdir=upper,workdir=work,uuid=on)",
        changed: "overlay on / type overlay (rw,relatime,lowerdir=/proc/self/fd/4,upperdir=upper,workdir=work,uuid=on)",
    },
];

/// Nothing else is redacted, and each redaction is tested: each of `common::REDACTIONS`,
/// alone, hides its example's value on a real snapshot's line, and the whole of them still
/// lets a real change there fail. A new redaction must come with its example here.
#[test]
fn every_redaction_is_tested() {
    let patterns: Vec<&str> = common::REDACTIONS.iter().map(|(pattern, _)| *pattern).collect();
    assert_eq!(
        EXAMPLES.len(),
        patterns.len(),
        "each redaction needs its example here, in order: {patterns:#?}"
    );
    for (redaction, example) in common::REDACTIONS.iter().zip(&EXAMPLES) {
        let Example { snapshot: name, redacted, shown, changed } = example;
        let pattern = redaction.0;
        assert!(snapshot(name).contains(redacted), "{name} has no {redacted:?}");
        assert_ne!(shown, redacted, "{pattern}: the example shows nothing to redact");
        assert_eq!(common::redact_with(redaction, shown), *redacted, "{pattern} hides {shown:?}");
        assert_eq!(redact(shown), *redacted, "the redactions, {pattern} among them");
        assert_ne!(redact(changed), *redacted, "{pattern} hides a real change: {changed:?}");
    }
}
