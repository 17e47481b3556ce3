# shellcheck shell=dash # busybox sh runs it: an ash, which shellcheck checks as dash
# tests/vm/tests.sh: the checks, run *inside* the test VM by busybox sh, from /opt/byoc, which is
# laid out like the repository so that the steps' default `--rootfs rootfs` finds the rootfs:
#   /opt/byoc/bin/      step1..step5, statically linked (on PATH)
#   /opt/byoc/rootfs/   a copy of the repository's rootfs/ (busybox and stress)
# The VM's /init (tests/vm/init) has made it look like a systemd laptop: pure cgroup v2, `/` a
# shared mount, and this shell in a login session's scope that holds another process.
#
# Output, TAP-like: one line per check, `ok - NAME` or `not ok - NAME (why)`; a failed check is
# followed by its command's output (stdout and stderr), indented with `#`, so that the console
# alone says what went wrong. Lines starting with `# note:` report facts worth knowing that are
# not failures. The last line is `N passed, M failed`; the script exits 0 only if all passed.
#
# Writing a check:
#   check NAME CMD...                 passes if CMD exits 0
#   expect [OPTIONS] NAME CMD...      passes if CMD's exit status and output are as OPTIONS say:
#       --status N                    CMD exits N (default 0)
#       --match REGEX                 a line of the output matches (grep -E); repeat for more
#       --no-match REGEX              no line matches; repeat for more
#       --show                        print the output even when the check passes
# CMD may be a program or a shell function. A function that fails should first print why: that
# goes into the output shown. Wrap with `timeout SECS` whatever could hang.
set -eu
exec 9>&1 # the console, for what goes to the host whatever a check does with its output

PASSED=0
FAILED=0
OUT_FILE=/tmp/byoc-check.out
OUT=
STATUS=0

_run() { # CMD...: runs it with stdout and stderr into $OUT and its status into $STATUS
    if "$@" >"$OUT_FILE" 2>&1; then STATUS=0; else STATUS=$?; fi
    OUT="$(cat "$OUT_FILE")"
}
_show() { [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/#   /'; }
_report() { # 1|0 NAME [WHY]
    if [ "$1" = 1 ]; then
        PASSED=$((PASSED + 1))
        echo "ok - $2"
    else
        FAILED=$((FAILED + 1))
        echo "not ok - $2 ($3)"
        _show
    fi
}
out_has() { printf '%s\n' "$OUT" | grep -Eq -- "$1"; }
_why_status() { # a failed status, with the likeliest reason for the odd ones
    case "$STATUS" in
    124 | 143) echo "exit $STATUS: timed out?" ;;
    137) echo "exit 137: killed by SIGKILL" ;;
    *) echo "exit $STATUS" ;;
    esac
}

check() { # NAME CMD...
    name="$1"
    shift
    _run "$@"
    if [ "$STATUS" -eq 0 ]; then _report 1 "$name"; else _report 0 "$name" "$(_why_status)"; fi
}

expect() { # [--status N] [--match RE]... [--no-match RE]... [--show] NAME CMD...
    want=0 show=0 matches='' no_matches=''
    # Regexes are kept newline-separated (none of ours contains a newline).
    nl='
'
    while :; do
        case "$1" in
        --status) want="$2" && shift 2 ;;
        --match) matches="$matches$2$nl" && shift 2 ;;
        --no-match) no_matches="$no_matches$2$nl" && shift 2 ;;
        --show) show=1 && shift ;;
        *) break ;;
        esac
    done
    name="$1"
    shift
    _run "$@"
    why=
    if [ "$STATUS" -ne "$want" ]; then why="$(_why_status), want $want"; fi
    # Split on newlines only, and without globbing, to walk the lists of regexes.
    old_ifs="$IFS" && IFS="$nl" && set -f
    for re in $matches; do
        [ -n "$why" ] || out_has "$re" || why="no output line matches /$re/"
    done
    for re in $no_matches; do
        [ -n "$why" ] || ! out_has "$re" || why="an output line matches /$re/"
    done
    IFS="$old_ifs" && set +f
    if [ -z "$why" ]; then
        _report 1 "$name"
        [ "$show" = 0 ] || _show
    else
        _report 0 "$name" "$why"
    fi
}

note() { echo "# note: $*"; }

finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# ---------------------------------------------------------------- helpers for the checks
CG=/sys/fs/cgroup
my_cgroup() { sed -n 's/^0:://p' /proc/self/cgroup; }
SESSION="$(my_cgroup)" # /user.slice/user-1000.slice/session-1.scope, as /init made it

fstype() { # MOUNTPOINT -> file system type of the mount there, from mountinfo ("cgroup2")
    awk -v m="$1" '$5 == m { sub(/.* - /, ""); t = $1 } END { print t }' /proc/self/mountinfo
}
is_cgroup2() {
    t="$(fstype $CG)"
    echo "$CG is mounted as: ${t:-nothing}"
    # 0x63677270 is CGROUP2_SUPER_MAGIC (busybox stat has no name for it)
    [ "$t" = cgroup2 ] && [ "$(stat -f -c %t $CG)" = 63677270 ]
}
no_cgroup_v1() {
    # Nothing of type "cgroup" (v1) is mounted...
    if grep ' - cgroup ' /proc/self/mountinfo; then return 1; fi
    # ...and none can be: with cgroup_no_v1=all, mounting a v1 controller fails with EINVAL.
    # freezer, net_cls and devices have no v2 counterpart, so they are never busy in v2 and
    # would mount without that option. (Named hierarchies, -o none,name=X, still mount on 6.1.)
    mkdir -p /tmp/v1
    for c in memory pids freezer net_cls devices; do
        if mount -t cgroup -o "$c" cgroup /tmp/v1 2>/dev/null; then
            umount /tmp/v1
            echo "a cgroup v1 '$c' hierarchy could be mounted"
            return 1
        fi
    done
}
root_is_shared() {
    # mountinfo field 5 is the mount point; the optional fields after field 6 carry `shared:N`.
    awk '$5 == "/" { found = 1; if ($0 ~ / shared:[0-9]+ /) ok = 1 } END { exit !(found && ok) }' \
        /proc/self/mountinfo || { grep ' / / ' /proc/self/mountinfo; return 1; }
}
cgroup_is_nonroot_and_populated() {
    echo "in cgroup $SESSION"
    [ -n "$SESSION" ] && [ "$SESSION" != / ] || return 1
    # Count members that are neither this shell nor its children (e.g. the `cat` that reads
    # cgroup.procs, which is gone by the time we look): here, the session's `sleep`.
    others=0
    while read -r p; do
        { [ "$p" != $$ ] && [ -e "/proc/$p" ]; } || continue
        ppid="$(awk '$1 == "PPid:" { print $2 }' "/proc/$p/status" 2>/dev/null)"
        [ "$ppid" = $$ ] && continue
        echo "other process: $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
        others=$((others + 1))
    done <"$CG$SESSION/cgroup.procs"
    [ "$others" -gt 0 ]
}
subtree_control_is_ebusy() {
    f="$CG$SESSION/cgroup.subtree_control"
    # busybox sh's echo reports write errors as "write error: <strerror>".
    if msg="$( (echo +memory >"$f") 2>&1)"; then
        echo "enabling +memory in $f succeeded; the EBUSY trap is missing"
        return 1
    fi
    echo "$msg"
    case "$msg" in *"Device or resource busy"*) return 0 ;; *) return 1 ;; esac
}
controllers_available_here() { # the session scope has the files a container's limits need
    ls "$CG$SESSION"
    [ -f "$CG$SESSION/memory.max" ] && [ -f "$CG$SESSION/pids.max" ] && [ -f "$CG$SESSION/cpu.max" ]
}

# CMD...: runs CMD, which must exit 0, and fails if /proc/self/mountinfo is not exactly the same
# afterwards (mount IDs and propagation flags included): a container's mount that propagated
# back through the shared `/`, or a `/` made private, would show here.
leaves_the_mount_table_alone() {
    cat /proc/self/mountinfo >/tmp/mountinfo.before
    status=0
    "$@" || status=$?
    cat /proc/self/mountinfo >/tmp/mountinfo.after
    if [ "$status" -ne 0 ]; then
        echo "the command exited $status"
        return 1
    fi
    if ! diff -u /tmp/mountinfo.before /tmp/mountinfo.after; then
        echo "the mount table changed (diff above: - before, + after)"
        return 1
    fi
}

# The workbook's cgroups (byoc-PID) anywhere in the tree, one per line.
byoc_cgroups() { find $CG -type d -name 'byoc-*'; }

# While a container runs, its cgroup holds the limits asked for, and the runtime itself stays
# where it was started (the session scope): only the container moves to /byoc/byoc-PID.
limits_are_in_place_while_it_runs() {
    step5 run --memory 64m --pids 7 --cpus 0.5 sleep 3 &
    job=$!
    # Wait for the container's cgroup to be populated, then read it while `sleep 3` runs.
    i=0 dir=
    until [ -n "$dir" ] && [ -n "$(cat "$dir/cgroup.procs" 2>/dev/null)" ]; do
        i=$((i + 1))
        if [ $i -gt 200 ]; then
            echo "no populated $CG/byoc/byoc-* after 10 s; byoc cgroups: $(byoc_cgroups | tr '\n' ' ')"
            kill "$job" 2>/dev/null
            wait "$job"
            return 1
        fi
        usleep 50000
        dir="$(find $CG/byoc -mindepth 1 -maxdepth 1 -type d -name 'byoc-*' 2>/dev/null | head -n 1)"
    done
    ok=0
    for expected in memory.max=67108864 memory.swap.max=0 memory.oom.group=1 pids.max=7 \
        "cpu.max=50000 100000"; do
        file="${expected%%=*}"
        value="$(cat "$dir/$file")"
        echo "$dir/$file: $value"
        [ "$value" = "${expected#*=}" ] || { echo "  ^ want ${expected#*=}" && ok=1; }
    done
    echo "container processes: $(tr '\n' ' ' <"$dir/cgroup.procs")"
    runtime="${dir##*/byoc-}" # the cgroup is named after the runtime's PID
    if grep -qx "$runtime" "$dir/cgroup.procs"; then
        echo "  ^ the runtime ($runtime) itself is in the container's cgroup" && ok=1
    fi
    where="$(sed -n 's/^0:://p' "/proc/$runtime/cgroup")"
    echo "the runtime ($runtime: $(tr '\0' ' ' <"/proc/$runtime/cmdline")) is in $where"
    [ "$where" = "$SESSION" ] || { echo "  ^ want $SESSION" && ok=1; }
    status=0
    wait "$job" || status=$?
    echo "the runtime exited $status"
    [ "$status" = 0 ] || ok=1
    return $ok
}

# The pids demo: 20 processes at most are the container's init, the shell and 18 sleeps.
# shellcheck disable=SC2016 # the container's sh expands it
PIDS_SCRIPT='for i in $(seq 50); do sleep 3 & echo "started sleep number $i"; done'
pids_limit_bounds_a_fork_loop() {
    status=0
    out="$(timeout 60 step5 run --pids 20 sh -c "$PIDS_SCRIPT" 2>&1)" || status=$?
    printf '%s\n' "$out"
    last="$(printf '%s\n' "$out" | sed -n 's/^started sleep number //p' | tail -n 1)"
    echo "(exit status $status, last sleep started: ${last:-none})"
    [ "$status" = 2 ] && [ "$last" = 18 ] && printf '%s\n' "$out" | grep -q "can't fork"
}

# A container may not outlive its run: every live process is in our own PID namespace. (A
# zombie is dead already; our PID 1, a shell, reaps orphans only now and then.)
no_container_process_left() {
    ours="$(readlink /proc/self/ns/pid)"
    left=0
    for p in /proc/[0-9]*; do
        ns="$(readlink "$p/ns/pid" 2>/dev/null)" || continue
        state="$(awk '$1 == "State:" { print $2 }' "$p/status" 2>/dev/null)"
        if [ -n "$ns" ] && [ "$ns" != "$ours" ] && [ "$state" != Z ]; then
            echo "left behind: ${p#/proc/} ($state) $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
            left=1
        fi
    done
    return $left
}

no_byoc_cgroup_left() {
    left="$(byoc_cgroups)"
    [ -z "$left" ] || { echo "left behind:" && echo "$left" && return 1; }
}

# --cgroup-parent at an empty cgroup (as a learner would make one) works, and leaves it empty.
an_empty_cgroup_parent_works() {
    parent=/user.slice/user-1000.slice/workbook.slice
    mkdir "$CG$parent"
    status=0
    out="$(step5 run --memory 100m --pids 20 --cgroup-parent $parent cat /proc/self/cgroup 2>&1)" ||
        status=$?
    echo "$out"
    echo "(exit status $status)"
    # rmdir fails if a byoc-PID cgroup is still inside.
    rmdir "$CG$parent" || { ls "$CG$parent" && return 1; }
    [ "$status" = 0 ] && printf '%s\n' "$out" | grep -Eqx "0::$parent/byoc-[0-9]+"
}

# 16 containers with limits start at once, and again: nothing holds /byoc meanwhile, so the runs
# race to make it (EEXIST for all but one) and to remove it (ENOENT for one that makes its
# byoc-PID just after another removed /byoc). None may fail.
sixteen_at_once_twice() {
    failed=0
    for round in 1 2; do
        runs=
        for i in $(seq 16); do
            step5 run --memory 50m true >"/tmp/run.$i" 2>&1 &
            runs="$runs $!"
        done
        i=0
        for run in $runs; do
            i=$((i + 1))
            wait "$run" || { failed=$((failed + 1)) && echo "round $round, run $i failed:" && cat /tmp/run.$i; }
        done
    done
    echo "$failed of 32 failed"
    [ "$failed" = 0 ]
}

# 16 containers with limits start at once, beside a long-running one, all from this one
# directory: each gets its own /byoc/byoc-PID, and /byoc itself, which every container shares
# (the first makes it, the last removes it), never makes one fail.
sixteen_at_once_beside_a_long_running_one() {
    rm -f /tmp/go /tmp/long.out /tmp/run.*
    mkfifo /tmp/go
    step5 run --memory 50m --pids 20 sh -c 'cat /proc/self/cgroup; echo ready; read line; ls /bin/sh' \
        </tmp/go >/tmp/long.out 2>&1 &
    long=$!
    exec 3>/tmp/go # the long-running one reads from here: open, so that it may start
    i=0
    until grep -q ready /tmp/long.out; do
        i=$((i + 1))
        [ $i -lt 1000 ] || { echo "the long-running container never said ready" && cat /tmp/long.out && return 1; }
        usleep 10000
    done
    runs=
    for i in $(seq 16); do
        step5 run --memory 50m --pids 20 cat /proc/self/cgroup >"/tmp/run.$i" 2>&1 &
        runs="$runs $!"
    done
    failed=0 i=0
    for run in $runs; do
        i=$((i + 1))
        if ! wait "$run" || ! grep -q '^0::/byoc/byoc-' /tmp/run.$i; then
            failed=$((failed + 1)) && echo "run $i failed:" && cat /tmp/run.$i
        fi
    done
    echo go >&3
    exec 3>&-
    wait "$long" || { failed=$((failed + 1)) && echo "the long-running one failed"; }
    cat /tmp/long.out
    echo "$failed of 17 failed"
    [ "$failed" = 0 ] && grep -q '^/bin/sh$' /tmp/long.out
}

# Docker's masked and read-only paths, on a kernel that has two that the host's lacks,
# /proc/kcore and /proc/sysrq-trigger. (/proc/scsi needs CONFIG_SCSI_PROC_FS, which neither
# Debian 12 kernel sets: its mask is the code that masks /proc/acpi.) A control file is only
# opened for writing, never written to: that the open fails is the proof. (In a subshell: a
# redirection that fails on `:`, a special builtin, ends the shell.)
host_controls_are_hidden_or_read_only() {
    for path in /proc/kcore /proc/sysrq-trigger; do
        [ -e "$path" ] || { echo "this kernel has no $path" && return 1; }
    done
    opened=$(step3 run sh -c ': >>/oldrootfs/proc/sysrq-trigger && head -c 1 /oldrootfs/proc/kcore | wc -c' 2>&1)
    echo "step 3: $opened"
    [ "$opened" = 1 ] || return 1
    for n in 4 5; do
        # Its two lines, on one.
        refused=$(step$n run sh -c 'wc -c </proc/kcore
            (: >>/proc/sysrq-trigger) 2>/dev/null || echo sysrq-trigger refused' 2>&1 | paste -s -d ' ' -)
        echo "step $n: $refused"
        [ "$refused" = "0 sysrq-trigger refused" ] || return 1
    done
}

# Every transcript that the book shows (data/transcripts.list: NAME, a tab, the command as the
# book shows it), run here as a learner on this stock Debian kernel would. Each goes back to the
# host as `BYOC-TRANSCRIPT NAME BASE64` lines; the host compares them with the snapshots.
run_the_books_transcripts() {
    # A learner without root is user nobody here, as on the host.
    mkdir -p /etc
    grep -qs '^nobody:' /etc/passwd || echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>/etc/passwd
    # Every Debian has /etc/shadow, readable by root only: chapter 2's remapped root is refused it.
    [ -e /etc/shadow ] || { : >/etc/shadow && chmod 600 /etc/shadow; }
    tab="$(printf '\t')"
    ran=0
    while IFS="$tab" read -r t_name t_shown; do
        t_command="${t_shown#\$ }"
        case "$t_command" in
        "just step"*) t_command="${t_command#just }" ;;
        "./target/debug/step"*)
            # As nobody, through su -c '…': each ' of the command becomes '\''.
            t_inner=$(printf '%s' "${t_command#./target/debug/}" | sed "s/'/'\\\\''/g")
            t_command="su -s /bin/sh nobody -c '$t_inner'"
            ;;
        *) echo "$t_name: not a step's command: $t_shown" && return 1 ;;
        esac
        t_status=0
        # Only stdin, stdout and stderr open, as for the host's tests: -v shows descriptors.
        (eval "TERM=xterm $t_command") </dev/null >/tmp/transcript.out 2>&1 9>&- || t_status=$?
        { printf '%s\n' "$t_shown" && cat /tmp/transcript.out && printf '[exit status: %s]' "$t_status"; } |
            base64 | sed "s/^/BYOC-TRANSCRIPT $t_name /" >&9
        ran=$((ran + 1))
    done <data/transcripts.list
    echo "ran $ran transcripts"
}

# ---------------------------------------------------------------- rootless (chapter 2, chapter 5)
# A learner without root: user learner (uid 1000), as systemd makes a user of a laptop.
add_learner() {
    mkdir -p /etc
    grep -qs '^learner:' /etc/passwd || echo 'learner:x:1000:1000::/tmp:/bin/sh' >>/etc/passwd
    grep -qs '^learner:' /etc/group || echo 'learner:x:1000:' >>/etc/group
}
# A setting that refuses users user namespaces, set to REFUSES for one rootless run of step 2:
# the run must fail, naming the setting and the way out; the setting is restored after.
# SETTING_FILE REFUSES SYSCTL
refused_by() {
    [ -e "$1" ] || { echo "this kernel has no $1" && return 1; }
    before=$(cat "$1")
    echo "$2" >"$1"
    out=$(su -s /bin/sh learner -c 'cd /opt/byoc && step2 run true' 2>&1)
    status=$?
    echo "$before" >"$1"
    echo "$out"
    [ "$status" = 1 ] && printf '%s\n' "$out" | grep -q "cannot run rootless: $1 is $2" &&
        printf '%s\n' "$out" | grep -q "sudo sysctl $3"
}
# A cgroup delegated to learner the way systemd delegates user@1000.service: the directory and
# its cgroup.procs, cgroup.subtree_control and cgroup.threads are the user's.
DELEGATED=$CG/user.slice/user-1000.slice/user@1000.service
delegate_to_learner() {
    mkdir -p "$DELEGATED" &&
        chown 1000:1000 "$DELEGATED" "$DELEGATED/cgroup.procs" "$DELEGATED/cgroup.subtree_control" \
            "$DELEGATED/cgroup.threads"
}
# CMD... run as learner, alone in the delegated cgroup (root moves the shell there first, as
# systemd starts a user's service in it), for 120 s at most: `timeout` itself stays outside,
# since a cgroup with a process of its own may not enable controllers for its children.
as_learner_delegated() {
    # shellcheck disable=SC2016 # the inner sh expands $$, $1 and $*
    timeout 120 sh -c 'echo $$ >"$1/cgroup.procs" && shift &&
        exec su -s /bin/sh learner -c "cd /opt/byoc && exec $*"' as-learner "$DELEGATED" "$@"
}
delegated_cgroup_as_found() {
    children=$(find "$DELEGATED" -mindepth 1 -type d)
    control=$(cat "$DELEGATED/cgroup.subtree_control")
    procs=$(cat "$DELEGATED/cgroup.procs")
    echo "children: ${children:-none}; subtree_control: ${control:-empty}; procs: ${procs:-none}"
    [ -z "$children$control$procs" ]
}

# ---------------------------------------------------------------- the VM looks like a laptop
check "/sys/fs/cgroup is cgroup2" is_cgroup2
check "no cgroup v1 hierarchy is mounted or mountable" no_cgroup_v1
check "/ is a shared mount (as systemd makes it)" root_is_shared
check "the tests run in a non-root cgroup that holds other processes" cgroup_is_nonroot_and_populated
check "that cgroup has memory.max, pids.max and cpu.max" controllers_available_here
check "enabling +memory in its subtree_control fails with EBUSY" subtree_control_is_ebusy
check "the container rootfs is there" test -x rootfs/bin/busybox -a -x rootfs/usr/bin/stress

# ---------------------------------------------------------------- step 4: the throwaway layer
# The VM has no modprobe: until we load overlayfs, it is a kernel without it.
expect --status 1 --match '^note: overlayfs refused a layer over "rootfs" \(ENODEV' \
    --match 'Read-only file system' \
    "step 4 without overlayfs: the rootfs read-only, and a note that says why" \
    timeout 30 step4 run touch /root/x
check "overlayfs loaded, as a stock Debian loads it at the first overlay mount" insmod overlay.ko
expect --match '^written$' "step 4 with overlayfs: the command writes, to a throwaway layer" \
    timeout 30 step4 run sh -c 'echo written >/root/x && cat /root/x'
check "... and rootfs/ is as it was" test ! -e rootfs/root/x

# ---------------------------------------------------------------- mounts: steps 2 to 5
# Each step's container has its own mount namespace, made private before it mounts anything:
# nothing of it may reach the shared mount table we run in.
check "step 2: run true leaves the shared mount table as it was" \
    leaves_the_mount_table_alone timeout 30 step2 run true
for n in 3 4 5; do
    check "step $n: run ls / leaves the shared mount table as it was" \
        leaves_the_mount_table_alone timeout 30 step$n run ls /
done
expect --match '^stress$' "step 5: the container sees its rootfs (ls /usr/bin)" \
    timeout 30 step5 run ls /usr/bin

# ---------------------------------------------------------------- step 5: cgroups, in the trap
# We run in a populated cgroup whose subtree_control refuses controllers (EBUSY), so step 5
# must put its containers elsewhere: by default beneath /sys/fs/cgroup/byoc.
expect --match "^0::/byoc/byoc-[0-9]+\$" \
    "step 5: with limits, the container runs in /byoc/byoc-PID" \
    timeout 30 step5 run --memory 100m --pids 20 --cpus 1 cat /proc/self/cgroup
check "step 5: the limits are written, and only the container moves (the runtime stays)" \
    limits_are_in_place_while_it_runs

# The classic demo. On v2 the module sets memory.oom.group=1: the whole container is killed, its
# init too, so the runtime exits 128 + SIGKILL.
expect --status 137 --show \
    --match '^container hit its memory limit \(100 MiB\): the OOM killer killed the whole container' \
    "step 5: stress wanting 200 MiB of a 100 MiB container is OOM-killed, said so, exit 137" \
    timeout 120 step5 run --memory 100m -- stress --vm-bytes 200m --vm-keep -m 1
expect --match 'successful run completed' --no-match 'memory limit|OOM' \
    "step 5: the same 200 MiB in a 300 MiB container completes, exit 0" \
    timeout 120 step5 run --memory 300m -- stress --vm-bytes 200m --vm-keep -m 1 -t 2
check "step 5: --pids 20 stops a fork loop at sleep 18 with \"can't fork\", exit 2" \
    pids_limit_bounds_a_fork_loop

# --cgroup-parent at our own, populated, session cgroup: the kernel refuses (EBUSY) and the
# runtime must say why, and what to do, without leaving anything behind.
expect --status 1 --show --match 'Device or resource busy' --match 'Suggestion:' \
    --match 'processes of its own' \
    "step 5: --cgroup-parent at our populated session cgroup fails with EBUSY and a suggestion" \
    timeout 30 step5 run --memory 100m --cgroup-parent "$SESSION" true
check "step 5: --cgroup-parent at an empty cgroup works, and is left empty" \
    an_empty_cgroup_parent_works

check "step 5: 16 runs at once, twice: /byoc made and removed by whoever comes first and last" \
    sixteen_at_once_twice
check "step 5: 16 runs at once beside a long-running one, all in /byoc/byoc-PID, none fails" \
    sixteen_at_once_beside_a_long_running_one

# ---------------------------------------------------------------- rootless
add_learner
expect --match '^0 1000 1$' --match '^container$' \
    "step 2 rootless, as learner: root in a user namespace, that root uid 1000" \
    su -s /bin/sh learner -c "cd /opt/byoc && timeout 30 step2 run sh -c 'set -- \$(cat /proc/self/uid_map); echo \$1 \$2 \$3; hostname'"
expect --match '^written$' "step 4 rootless, as learner: a shell's work in its layer" \
    su -s /bin/sh learner -c "cd /opt/byoc && timeout 30 step4 run sh -c 'echo written >/tmp/x && cat /tmp/x'"
check "rootless refused by user.max_user_namespaces = 0, and says so" \
    refused_by /proc/sys/user/max_user_namespaces 0 user.max_user_namespaces=15000
if [ -e /proc/sys/kernel/unprivileged_userns_clone ]; then
    check "rootless refused by Debian's kernel.unprivileged_userns_clone = 0, and says so" \
        refused_by /proc/sys/kernel/unprivileged_userns_clone 0 kernel.unprivileged_userns_clone=1
else
    note "this kernel has no kernel.unprivileged_userns_clone (Debian's patch): not tried"
fi
expect --status 1 --match 'rootless, cgroup limits need a cgroup delegated to you' \
    --match 'Delegate=yes' \
    "step 5 rootless outside a delegated cgroup: limits refused, with the way out" \
    su -s /bin/sh learner -c 'cd /opt/byoc && timeout 30 step5 run --memory 100m true'
check "a cgroup delegated to learner, as systemd's user@1000.service" delegate_to_learner
expect --status 137 --show \
    --match '^container hit its memory limit \(100 MiB\): the OOM killer killed the whole container' \
    "step 5 rootless in a delegated cgroup: stress wanting 200 MiB of 100 MiB is OOM-killed, exit 137" \
    as_learner_delegated step5 run --memory 100m -- stress --vm-bytes 200m --vm-keep -m 1
check "... and the delegated cgroup is as it was: no child, no controller enabled, no process" \
    delegated_cgroup_as_found
rmdir "$DELEGATED"

# ---------------------------------------------------------------- steps 4 and 5: hardening
check "steps 4, 5: kcore hidden, sysrq-trigger read-only (step 3 reads one, opens the other)" \
    host_controls_are_hidden_or_read_only

# ---------------------------------------------------------------- the book's transcripts
expect --show --match '^ran [0-9]+ transcripts$' "the book's transcripts, run on this kernel" \
    run_the_books_transcripts

# ---------------------------------------------------------------- nothing left behind
check "no container process outlives its run" no_container_process_left
check "no byoc-* cgroup is left anywhere under /sys/fs/cgroup" no_byoc_cgroup_left
check "the session cgroup's subtree_control is still empty" \
    test -z "$(cat "$CG$SESSION/cgroup.subtree_control")"
# The runtime makes /sys/fs/cgroup/byoc when it needs it, and removes it when the last
# container leaves it.
check "the workbook's /sys/fs/cgroup/byoc is gone too" test ! -e "$CG/byoc"

finish
