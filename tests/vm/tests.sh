# tests/vm/tests.sh — runs *inside* the test VM, with busybox sh, from /opt/byoc:
#   /opt/byoc/bin/      the static binaries (on PATH)      $BYOC_BIN
#   /opt/byoc/rootfs/   the container's root file system  $BYOC_ROOTFS
# One line per check, `ok - NAME` or `not ok - NAME` (followed by the command's output, indented
# with `#`), and a last line `N passed, M failed`. Exits 0 only if every check passed.
#
# Writing a check (each runs its command, captures stdout+stderr into $OUT, never aborts the file):
#   check NAME CMD...                     CMD exits 0
#   expect_status N NAME CMD...           CMD exits exactly N (e.g. 137 for SIGKILL)
#   expect_output REGEX NAME CMD...       CMD exits 0 and its output matches REGEX (grep -E)
#   expect_status_output N REGEX NAME CMD...   both: exit N and output matching REGEX
# CMD may be a binary or a shell function; wrap it in `timeout SECS` when it could hang.
# After a check, $OUT holds its output for follow-up assertions with `check NAME grep ... "$OUT"`-
# style functions such as `out_has REGEX`.
set -eu

PASSED=0
FAILED=0
OUT_FILE=/tmp/byoc-check.out
OUT=

_run() { # CMD... -> sets $STATUS and $OUT; never trips set -e
    if "$@" >"$OUT_FILE" 2>&1; then STATUS=0; else STATUS=$?; fi
    OUT="$(cat "$OUT_FILE")"
}
_report() { # OK? NAME WHY
    if [ "$1" = 1 ]; then
        PASSED=$((PASSED + 1))
        echo "ok - $2"
    else
        FAILED=$((FAILED + 1))
        echo "not ok - $2 ($3)"
        [ -z "$OUT" ] || printf '%s\n' "$OUT" | sed 's/^/#   /'
    fi
}
check() { # NAME CMD...
    name="$1"
    shift
    _run "$@"
    if [ "$STATUS" -eq 0 ]; then _report 1 "$name"; else _report 0 "$name" "exit $STATUS"; fi
}
expect_status() { # N NAME CMD...
    want="$1" name="$2"
    shift 2
    _run "$@"
    if [ "$STATUS" -eq "$want" ]; then _report 1 "$name"; else _report 0 "$name" "exit $STATUS, want $want"; fi
}
expect_status_output() { # N REGEX NAME CMD...
    want="$1" re="$2" name="$3"
    shift 3
    _run "$@"
    if [ "$STATUS" -ne "$want" ]; then
        _report 0 "$name" "exit $STATUS, want $want"
    elif ! out_has "$re"; then
        _report 0 "$name" "output does not match /$re/"
    else
        _report 1 "$name"
    fi
}
expect_output() { # REGEX NAME CMD...
    re="$1"
    shift
    expect_status_output 0 "$re" "$@"
}
out_has() { printf '%s\n' "$OUT" | grep -Eq -- "$1"; }
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
}

# ---------------------------------------------------------------- helpers for the checks
my_cgroup() { sed -n 's/^0:://p' /proc/self/cgroup; }
fstype() { # MOUNTPOINT -> file system type of the mount there, from mountinfo ("cgroup2")
    awk -v m="$1" '$5 == m { sub(/.* - /, ""); t = $1 } END { print t }' /proc/self/mountinfo
}
# The mount table as the host's `/` sees it, for "leaves the mount table exactly as it was".
mount_table() { cut -d' ' -f4- /proc/self/mountinfo; }

is_cgroup2() {
    t="$(fstype /sys/fs/cgroup)"
    echo "/sys/fs/cgroup is mounted as: ${t:-nothing}"
    # 0x63677270 is CGROUP2_SUPER_MAGIC (busybox stat has no name for it)
    [ "$t" = cgroup2 ] && [ "$(stat -f -c %t /sys/fs/cgroup)" = 63677270 ]
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
cgroup_is_nonroot_and_shared() {
    cg="$(my_cgroup)"
    echo "in cgroup $cg"
    [ -n "$cg" ] && [ "$cg" != / ] || return 1
    # Count members that are neither this shell nor its children (e.g. the `cat` that reads
    # cgroup.procs, which is gone by the time we look): here, the session's `sleep`.
    procs="$(cat "/sys/fs/cgroup$cg/cgroup.procs")"
    others=0
    for p in $procs; do
        [ "$p" != $$ ] && [ -e "/proc/$p" ] || continue
        ppid="$(awk '$1 == "PPid:" { print $2 }' "/proc/$p/status" 2>/dev/null)"
        [ "$ppid" = $$ ] && continue
        echo "other process: $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
        others=$((others + 1))
    done
    [ "$others" -gt 0 ]
}
subtree_control_is_ebusy() {
    f="/sys/fs/cgroup$(my_cgroup)/cgroup.subtree_control"
    # busybox sh's echo reports write errors as "write error: <strerror>".
    if msg="$( (echo +memory >"$f") 2>&1)"; then
        echo "enabling +memory in $f succeeded; the EBUSY trap is missing"
        return 1
    fi
    echo "$msg"
    case "$msg" in *"Device or resource busy"*) return 0 ;; *) return 1 ;; esac
}
controllers_available_here() { # the session scope has the files a container's limits need
    d="/sys/fs/cgroup$(my_cgroup)"
    [ -f "$d/memory.max" ] && [ -f "$d/pids.max" ] && [ -f "$d/cpu.max" ]
}

# ---------------------------------------------------------------- the VM looks like a laptop
check "/sys/fs/cgroup is cgroup2" is_cgroup2
check "no cgroup v1 hierarchy is mounted or mountable" no_cgroup_v1
check "/ is a shared mount (as systemd makes it)" root_is_shared
check "the tests run in a non-root cgroup that holds other processes" cgroup_is_nonroot_and_shared
check "that cgroup has memory.max, pids.max and cpu.max" controllers_available_here
check "enabling +memory in its subtree_control fails with EBUSY" subtree_control_is_ebusy
check "the container rootfs is there" test -x "$BYOC_ROOTFS/bin/busybox"

# ---------------------------------------------------------------- the binaries
expect_output '^hello from a static Rust binary' "a static Rust binary runs" hello-static

# Planned (the integrator adds these once the step binaries exist), e.g.:
#   before="$(mount_table)"
#   expect_status_output 137 'killed.*memory' "step 5: 200m under --memory 100m is OOM-killed" \
#       timeout 60 step5 run --memory 100m rootfs/ stress --vm 1 --vm-bytes 200m --vm-keep
#   expect_status 0 "step 5: 300m under --memory 400m exits 0" timeout 60 step5 run ...
#   check "step 5: no cgroup left behind" sh -c '! ls -d /sys/fs/cgroup/byoc* 2>/dev/null'
#   check "steps 3-5 leave the shared mount table as it was" test "$(mount_table)" = "$before"

finish
