#!/usr/bin/env bash
# tests/tools/safety-net.sh REPORT SECONDS PROGRAM [ARGS...]
#
# Runs a learner's step, PROGRAM ARGS..., as root, inside a throwaway set of namespaces that
# stands for the host (run by a learner without root, it runs the step as the root of a user
# namespace of the learner's own, and makes no cgroup: see below): a mount namespace that
# receives the host's mounts but sends none back
# (slave), with its `/` made shared again inside it as on a systemd machine; UTS, IPC, network
# and PID namespaces of its own; a cgroup of its own (at most 1024 processes, 2 GiB); and a time
# limit of SECONDS. A step that is still wrong then harms the stand-in, never the host, and the
# harm is seen: after the run, this script compares the stand-in with how it was and writes, to
# REPORT, one line `status N` and one line `harm WHAT` for each thing the program did to what it
# took for the host: renamed it, changed its mounts or its root, brought up its network, left
# processes or cgroups. `just check` reads REPORT; `just yours` prints the harm lines.
# PROGRAM's output goes where this script's goes, and its terminal is this script's.
# With BYOC_NET=off (step 1, which makes no namespace), PROGRAM runs on the host, and only what
# it leaves running is reported.
set -u

report="$1" seconds="$2"
shift 2

# PROGRAM and its ARGS reach the shell that runs it through a file, not through that shell's
# command line: the program's parent is that shell, and a step may show its parent's command
# line (`cat /proc/$PPID/cmdline`), which must then hold nothing of the net's, nor the
# learner's `run …`.
if [ -z "${BYOC_NET_ARGS:-}" ]; then
    BYOC_NET_ARGS=$(mktemp)
    printf '%s\0' "$@" >"$BYOC_NET_ARGS"
    export BYOC_NET_ARGS
    exec "$0" "$report" "$seconds"
fi
mapfile -d '' -t program <"$BYOC_NET_ARGS"

# Kill, after SECONDS, the processes `kill` reaches with its arguments "$@" (-1: all of the
# stand-in's, from within it; -PGID: a process group), saying so in the report, open on fd 3:
# a watchdog in the background, which `kill -TERM` stops.
watchdog() {
    sleep "$seconds" &
    local sleep=$!
    trap 'kill "$sleep" 2>/dev/null; exit' TERM
    wait "$sleep"
    echo "harm the run did not end within $seconds s (killed)" >&3
    kill -TERM "$@" 2>/dev/null
    sleep 2
    kill -KILL "$@" 2>/dev/null
}

if [ "${BYOC_NET:-}" = off ]; then
    # ------------------------------------------------- no net: step 1, on the host as it is
    # Step 1 makes no namespace, and can do nothing that its caller could not: it runs here as
    # `just step1` runs the reference, so that what it shows is what chapter 1 says (the
    # host's namespaces, the host's PIDs). In a session of its own: what it leaves running is
    # found there, said and killed.
    exec 3>"$report"
    rm -f "$BYOC_NET_ARGS"
    unset BYOC_NET BYOC_NET_ARGS
    { setsid "${program[@]}" 2>&4 3>&- 4>&- & } 4>&2 2>/dev/null
    session=$!
    watchdog -- "-$session" &
    watching=$!
    wait "$session" 2>/dev/null
    status=$?
    kill -TERM "$watching" 2>/dev/null
    wait "$watching"
    left=$(pgrep -s "$session" -l | tr '\n' ' ')
    if [ -n "$left" ]; then
        echo "harm your program left processes running: ${left% } (killed now)" >&3
        pkill -KILL -s "$session"
    fi
    echo "status $status" >&3
    exit "$status"
fi

# Every process: PID PPID NAME, a line each, from the /proc that this script sees.
processes() {
    local stat line fields
    for stat in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$stat" || continue
        read -r -a fields <<<"${line##*) }"
        line=${line%)*}
        echo "${line%% (*} ${fields[1]} ${line#* (}"
    done
}

# The processes beneath PID $1, its children and theirs: PID NAME, a line each.
descendants() {
    processes | awk -v root="$1" '
        { pid = $1; parent[pid] = $2; $1 = $2 = ""; sub(/^ +/, ""); name[pid] = $0 }
        END {
            found[root] = 1
            do {
                more = 0
                for (pid in parent)
                    if (!(pid in found) && (parent[pid] in found)) { found[pid] = 1; more = 1 }
            } while (more)
            for (pid in found) if (pid != root) print pid, name[pid]
        }'
}

# The observer: from the host's side, in the host's mount and PID namespaces, where the
# program cannot unmount, pivot or hide what it sees, it looks at the stand-in before the run
# and after it, and writes the harm it sees to REPORT. It and the stand-in's PID 1 speak
# through the FIFOs up and down in the directory $1: ready, go; ended, finished.
# Remove the cgroup $1 once nothing is in it. The stand-in's processes die after its PID 1,
# each in its own time (a busy machine's take longest), and a cgroup that still holds one, even
# dying, refuses rmdir: kill what is left, then try again, for 5 s at most.
remove_cgroup() {
    local tries=0 pid
    until rmdir "$1" 2>/dev/null || [ ! -d "$1" ]; do
        while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$1/cgroup.procs"
        tries=$((tries + 1))
        if [ "$tries" -ge 100 ]; then
            echo "safety net: error: cannot remove its cgroup $1: remove it by hand (rmdir)" >&2
            return 1
        fi
        sleep 0.05
    done
}

observe() {
    trap : INT TERM # Ctrl-C is for the program; the observer still has to report
    exec 7<"$1/up" 8>"$1/down"
    read -r _ <&7 || return
    local unshare init ns
    unshare=$(processes | awk -v outer="$$" '$2 == outer && $3 == "unshare" { print $1 }')
    init=$(processes | awk -v unshare="$unshare" '$2 == unshare { print $1 }')
    # The stand-in's UTS and network namespaces, entered to look; without root, through the
    # user namespace that holds them, which is ours.
    ns=(-t "$init")
    [ "$(id -u)" = 0 ] || ns+=(--user --preserve-credentials)
    uts() { nsenter "${ns[@]}" --uts hostname 2>/dev/null; }
    root() { stat -L -c '%d:%i' "/proc/$init/root" 2>/dev/null; }
    # lo's state in the stand-in's network namespace.
    lo() { nsenter "${ns[@]}" --net ip -o link show lo 2>/dev/null | grep -o '<[^>]*>'; }
    mounts() { grep -v ' - proc ' "/proc/$init/mountinfo" 2>/dev/null | cut -d' ' -f5 | sort; }
    local hostname_before root_before lo_before mounts_before
    hostname_before=$(uts) root_before=$(root) lo_before=$(lo) mounts_before=$(mounts)
    echo go >&8
    read -r _ <&7

    harm() { echo "harm $*" >>"$report"; }
    [ "$(uts)" = "$hostname_before" ] ||
        harm "your program renamed the host, from $hostname_before to $(uts): sethostname(2) must run in a new UTS namespace (CLONE_NEWUTS)"
    local moved=
    [ "$(root)" = "$root_before" ] || moved=1
    [ -z "$moved" ] ||
        harm "your program moved the host's root: pivot_root(2) must run in a new mount namespace (CLONE_NEWNS)"
    [ "$(lo)" = "$lo_before" ] ||
        harm "your program changed the host's network (lo): configure lo in a new network namespace (CLONE_NEWNET)"
    local mounts_after new gone left pid name
    mounts_after=$(mounts)
    # (A root moved renames every mount point: that is the harm, said above.)
    if [ -z "$moved" ] && [ "$mounts_after" != "$mounts_before" ]; then
        new=$(comm -13 <(echo "$mounts_before") <(echo "$mounts_after") | tr '\n' ' ')
        gone=$(comm -23 <(echo "$mounts_before") <(echo "$mounts_after") | tr '\n' ' ')
        harm "your program changed the host's mounts (new: ${new:-none}; gone: ${gone:-none}): make the container's mounts private first, mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE, NULL), in a new mount namespace"
    fi
    # What is still running beneath the stand-in's PID 1 (but the PID 1, waiting for us): the
    # container outlived its command. Named by their PIDs in the stand-in, as the program saw
    # them; they go with the stand-in.
    left=
    while read -r pid name; do
        pid=$(awk '/^NSpid:/ { print $3 }' "/proc/$pid/status" 2>/dev/null)
        [ -z "$pid" ] || left="$left $pid $name"
    done < <(descendants "$init")
    [ -z "$left" ] || harm "your program left processes running:$left (killed now)"
    echo finished >&8
}

if [ "${BYOC_NET_INSIDE:-}" != 1 ]; then
    # ------------------------------------------------------------ outside: the host's side
    : >"$report"
    # Without root: the stand-in is made in a user namespace of the learner's own, whose root
    # the program is (book: chapter 2, Without root). It can harm the stand-in, where it
    # shows, and nothing of the real host's. No cgroup: none is the learner's to make.
    userns=()
    [ "$(id -u)" = 0 ] || userns=(--user --map-root-user)
    # A cgroup for the stand-in, in each tree that has the memory or pids controller: beneath
    # the cgroup we run in on v1; on v2, beneath /sys/fs/cgroup/byoc-net, which holds no process.
    cgroups=()
    if [ ${#userns[@]} != 0 ]; then
        : # rootless: none
    elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        base=/sys/fs/cgroup/byoc-net
        mkdir -p "$base" 2>/dev/null
        for dir in /sys/fs/cgroup "$base"; do
            echo "+pids +memory" >"$dir/cgroup.subtree_control" 2>/dev/null
        done
        cgroups+=("$base/net-$$")
    else
        while IFS=: read -r _ controllers path; do
            case ",$controllers," in
            *,memory,* | *,pids,*) cgroups+=("/sys/fs/cgroup/$controllers${path%/}/byoc-net-$$") ;;
            esac
        done </proc/self/cgroup
    fi
    for dir in "${cgroups[@]}"; do
        mkdir -p "$dir" && echo $$ >"$dir/cgroup.procs"
        [ -f "$dir/pids.max" ] && echo 1024 >"$dir/pids.max"
        [ -f "$dir/memory.max" ] && echo 2G >"$dir/memory.max"
        [ -f "$dir/memory.limit_in_bytes" ] && echo 2G >"$dir/memory.limit_in_bytes"
    done 2>/dev/null
    v2_byoc_before=$(ls -d /sys/fs/cgroup/byoc /sys/fs/cgroup/byoc/byoc-* 2>/dev/null)

    talk=$(mktemp -d)
    mkfifo "$talk/up" "$talk/down"
    observe "$talk" &
    observer=$!
    BYOC_NET_INSIDE=1 BYOC_NET_TALK=$talk unshare "${userns[@]}" --mount --propagation slave --uts --ipc --net --pid --fork \
        --kill-child --mount-proc -- "$0" "$report" "$seconds"
    status=$?
    rm -f "$BYOC_NET_ARGS"
    # The observer has said finished, unless the stand-in never started or died first.
    kill -KILL "$observer" 2>/dev/null
    wait "$observer" 2>/dev/null
    rm -rf "$talk"

    # Back in our own cgroup, then: what the program left beneath the stand-in's cgroups (its
    # step 5 on v1), or beside them (its step 5 on v2, which uses /sys/fs/cgroup/byoc).
    for dir in "${cgroups[@]}"; do
        echo $$ >"${dir%/*}/cgroup.procs" 2>/dev/null
        while IFS= read -r left; do
            echo "harm your program left the cgroup ${left#"$dir"/} behind (removed now)" >>"$report"
            remove_cgroup "$left"
        done < <(find "$dir" -mindepth 1 -depth -type d 2>/dev/null)
        remove_cgroup "$dir"
    done
    for left in /sys/fs/cgroup/byoc /sys/fs/cgroup/byoc/byoc-*; do # in the order ls -d gave
        [ -d "$left" ] || continue # an unmatched pattern, or no byoc/
        case "$v2_byoc_before" in *"$left"*) continue ;; esac
        echo "harm your program left the cgroup $left behind (removed now)" >>"$report"
        rmdir "$left" 2>/dev/null # beside the stand-in's: another container's may be in it
    done
    rmdir /sys/fs/cgroup/byoc-net 2>/dev/null
    grep -q '^status ' "$report" || echo "status $status" >>"$report"
    exit "$status"
fi

# ---------------------------------------------------------------- inside: PID 1 of the stand-in
# The observer, outside, is told when the stand-in is ready and when the program has ended,
# through FIFOs opened now: the program may mount over or pivot away from where they are.
exec 5>"$BYOC_NET_TALK/up" 6<"$BYOC_NET_TALK/down"
# Nothing of the net's in the program's environment either.
unset BYOC_NET BYOC_NET_ARGS BYOC_NET_INSIDE BYOC_NET_TALK
# The stand-in's / is shared, as systemd makes a host's: a container that forgets to make its
# mounts private leaks them here, where they show, and not to the real host.
mount --make-rshared /
# The report, opened now: the program may mount over the directory it is in (/tmp, say).
exec 3>>"$report"
echo ready >&5
read -r _ <&6

# Every process of the stand-in but its PID 1, this shell, after SECONDS.
watchdog -1 5>&- 6<&- </dev/null &
watching=$!
# Run by this shell, in the foreground, with its terminal: its parent is this shell, whose
# command line holds nothing of the program's. This shell's own stderr is /dev/null
# meanwhile, the program's the terminal's: a program that a signal kills then shows no
# "Killed" line of bash's, naming this script, in its output.
{ "${program[@]}" 2>&4 4>&- 5>&- 6<&-; } 4>&2 2>/dev/null
status=$?
kill -TERM "$watching" 2>/dev/null
wait "$watching"
echo ended >&5
read -r _ <&6
echo "status $status" >&3
exit "$status"
