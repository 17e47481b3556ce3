//! What a transcript hides before it is compared with its snapshot: what varies from run to
//! run, or from kernel to kernel, and nothing else.

/// What varies from run to run, or from kernel to kernel, and nothing else:
/// each match is replaced before a transcript is compared with its snapshot.
/// `tests/redactions.rs` shows, for each, that it hides only what varies and
/// that a real change of behaviour still fails the snapshot.
pub const REDACTIONS: [(&str, &str); 11] = [
    // The runtime's host PID in the `-v` narration. The container's own PIDs,
    // all below 100, stay: `Pid(2)` is the command.
    (r"waitpid\(\d{3,}, ", "waitpid([PID], "),
    (r"\bPid\(\d{3,}\)", "Pid([PID])"),
    // Rootless, the runtime writes its child's ID maps, in /proc/CHILD'S-PID.
    (r#""/proc/\d{3,}/(setgroups|uid_map|gid_map)""#, "\"/proc/[PID]/$1\""),
    // ... or has the helpers write them, given the child's PID.
    (r"\b(newuidmap|newgidmap)\(\d{3,}, ", "$1([PID], "),
    // Step 5 names the container's cgroup after the runtime's PID.
    (r"\bbyoc-\d+\b", "byoc-[PID]"),
    // The random hostname that step 4 and later make up.
    (r"\b[0-9a-f]{12}\b", "[RANDOM-ID]"),
    // stress's wall time, which it rounds to whole seconds: 0s or 1s by chance.
    (r"(successful|failed) run completed in \d+s", "$1 run completed in [N]s"),
    // The /proc and /sys paths that only some kernels have (sysrq-trigger,
    // kcore, scsi: build options; asound, powercap: drivers), made read-only or
    // masked, in the container's mount table: a line goes, but only when its
    // path is protected (read-only), so that an unprotected one still shows.
    (
        r"(?m)^\w+ on /(proc/(sysrq-trigger|kcore|scsi|asound|latency_stats|timer_stats|sched_debug)|sys/devices/virtual/powercap) type \w+ \(ro,[^)\n]*\)\n",
        "",
    ),
    // The same paths in the `-v` narration: the mounts that protect them, a line each, go
    // too, but only when they worked (`= 0`), so that a refused one still shows.
    (
        r#"(?m)^=> mount\((?:"[^"\n]*"|NULL), "(?:proc/(?:sysrq-trigger|kcore|scsi|asound|latency_stats|timer_stats|sched_debug)|sys/devices/virtual/powercap)", [^\n]*\) = 0(?:  # [^\n]*)?\n"#,
        "",
    ),
    // Whether tmpfs numbers its files with 64 bits unless told (CONFIG_TMPFS_INODE64):
    // stock Debian kernels say `inode64` in the mount's options, others say nothing.
    (r"(?m)^(tmpfs on [^\n]*),inode64\)$", "$1)"),
    // Whether overlayfs shows its `uuid=` option unasked: newer kernels say `uuid=on` for the
    // layer step 4 mounts, Debian 12's 6.1 (the VM's) says nothing.
    (r"(?m)^(overlay on [^\n]*),uuid=on\)$", "$1)"),
];

/// `text` with every one of `REDACTIONS` applied, in order.
pub fn redact(text: &str) -> String {
    REDACTIONS.iter().fold(text.to_string(), |text, redaction| redact_with(redaction, &text))
}

/// `text` with one of `REDACTIONS` applied: `(pattern, replacement)`.
pub fn redact_with((pattern, replacement): &(&str, &str), text: &str) -> String {
    let pattern = regex::Regex::new(pattern).expect("the redactions are valid regexes");
    pattern.replace_all(text, *replacement).into_owned()
}
