#!/usr/bin/env bash
# tests/tools/other-runtime.sh: another container runtime at work beside the workbook's tests,
# as Docker or Podman would be on a learner's machine. Until it is stopped (SIGTERM or Ctrl-C),
# it starts a container every 0.1 s, each living 0.5 s, so that about five run at any time.
# Each one, like a Docker container, has
#   - PID, mount, UTS, IPC and network namespaces of its own, with its own /proc;
#   - a mount in the host's mount namespace (Docker's overlay `merged` directories):
#     /run/byoc-other-runtime/PID/N/merged, PID being this script's;
#   - a cgroup of its own, in each cgroup tree, beneath the cgroup this script runs in:
#     …/other-runtime-PID-N.
# It cleans up after each container, and after all of them when it is stopped.
# The workbook's tests must neither fail because of it nor miss a leak of their own beside it:
# tests/harness.rs runs it, and so can you, in another terminal, while `just test` runs.
set -u
[ "$(id -u)" = 0 ] || { echo "other-runtime: run it as root" >&2; exit 1; }

base=/run/byoc-other-runtime/$$
mkdir -p "$base"

# The cgroup directories this script runs in, one per tree: v1 lines are ID:CONTROLLERS:PATH
# (mounted at /sys/fs/cgroup/CONTROLLERS), the v2 line is 0::PATH.
own_cgroups=()
while IFS=: read -r _ controllers path; do
    case "$controllers" in
    "") dir=/sys/fs/cgroup/unified$path; [ -d /sys/fs/cgroup/unified ] || dir=/sys/fs/cgroup$path ;;
    name=*) continue ;;
    *) dir=/sys/fs/cgroup/$controllers$path ;;
    esac
    [ -d "$dir" ] && own_cgroups+=("${dir%/}")
done </proc/self/cgroup

container() { # N: one container's whole life
    local n=$1 dir
    mkdir -p "$base/$n/merged"
    mount -t tmpfs "other-runtime-$n" "$base/$n/merged"
    for dir in "${own_cgroups[@]}"; do mkdir -p "$dir/other-runtime-$$-$n"; done
    (
        for dir in "${own_cgroups[@]}"; do echo "$BASHPID" >"$dir/other-runtime-$$-$n/cgroup.procs"; done 2>/dev/null
        # shellcheck disable=SC2016 # $0 is the inner sh's: "$n"
        exec unshare --pid --mount --uts --ipc --net --fork --mount-proc \
            sh -c 'hostname "other-$0"; sleep 0.5' "$n"
    )
    umount "$base/$n/merged"
    rm -rf "${base:?}/$n"
    for dir in "${own_cgroups[@]}"; do rmdir "$dir/other-runtime-$$-$n" 2>/dev/null; done
}

stop() { # start no more, let those running end (within 0.5 s), and clean up
    trap - TERM INT EXIT
    wait
    for merged in "$base"/*/merged; do umount "$merged" 2>/dev/null; done
    rm -rf "$base"
    rmdir "${base%/*}" 2>/dev/null # the last one out
    for dir in "${own_cgroups[@]}"; do rmdir "$dir"/other-runtime-$$-* 2>/dev/null; done
    exit 0
}
trap stop TERM INT EXIT

n=0
while :; do
    n=$((n + 1))
    container "$n" &
    sleep 0.1
done
