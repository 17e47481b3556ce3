# Build Your Own Container in Rust: run `just` to list these recipes.

# Recipe arguments reach commands as "$@", quoting intact: `just step3 run sh -c 'echo hi'`.
set positional-arguments

# Containers need root, or a user namespace (book: chapter 2, Without root). As root, or with
# sudo at hand, the steps run as root, as the book shows them; without sudo, or when you ask
# with ROOTLESS=1 (`ROOTLESS=1 just step4 run /bin/sh`, as a user), they run rootless.
mode := if `id -u` == "0" { "root" } else if env("ROOTLESS", "") == "1" { "rootless" } else if `command -v sudo || true` != "" { "sudo" } else { "rootless" }
sudo := if mode == "sudo" { "sudo" } else { "" }
# The mode, and why, in the line each run starts with (`_mode`).
mode_why := if mode == "root" { "as root" } else if mode == "sudo" { "as root, through sudo (ROOTLESS=1 runs it without root)" } else if env("ROOTLESS", "") == "1" { "rootless, as $(id -un) in a user namespace, as ROOTLESS=1 asks (book: chapter 2)" } else { "rootless, as $(id -un) in a user namespace: no sudo here (book: chapter 2)" }
# What needs root in every mode (the tests): sudo unless root.
root_sudo := if `id -u` == "0" { "" } else { "sudo" }
# A shell function for recipes: run a command as root, through sudo unless we are root.
as_root := 'as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }'

# List the recipes
default:
    @just --list --unsorted

# Step 1, the skeleton: just step1 run echo hello
[no-exit-message]
step1 *args: _build (_mode "step1")
    @{{ sudo }} target/debug/step1 "$@"

# Step 2, namespaces: just step2 run sh -c 'hostname; echo $$'
[no-exit-message]
step2 *args: _build (_mode "step2")
    @{{ sudo }} target/debug/step2 "$@"

# Step 3, a root filesystem: just step3 run /bin/sh
[no-exit-message]
step3 *args: _build rootfs (_mode "step3")
    @{{ sudo }} target/debug/step3 "$@"

# Step 4, a real environment: just step4 run --user learner /bin/sh
[no-exit-message]
step4 *args: _build rootfs (_mode "step4")
    @{{ sudo }} target/debug/step4 "$@"

# Step 5, cgroups: just step5 run --memory 100m -- stress --vm-bytes 200m --vm-keep -m 1
[no-exit-message]
step5 *args: _build rootfs (_mode "step5")
    #!/usr/bin/env bash
    # Rootless, cgroup limits need a cgroup v2 delegated to you: systemd gives one to a
    # scope of its own when asked (book: chapter 5, Without root).
    if [ {{ mode }} = rootless ] && [ -f /sys/fs/cgroup/cgroup.controllers ] &&
        systemd-run --user --scope --quiet true 2>/dev/null; then
        exec systemd-run --user --scope --quiet -p Delegate=yes target/debug/step5 "$@"
    fi
    exec {{ sudo }} target/debug/step5 "$@"

# Your own step N to write, from the reference's skeleton (or --from-previous: a copy of yours)
[no-exit-message]
exercise n *flags:
    @cargo test -q --test workshop -- exercise "$@"

# Check your steps, stage by stage, in a safety net: just check, just check 3, just check 3.2
[no-exit-message]
check *what: rootfs
    @tests/workshop/check.sh {{ mode }} "$@"

# Run your own step N by hand, in the safety net: just yours 3 run /bin/sh
[no-exit-message]
yours n *args: rootfs
    @tests/workshop/yours.sh {{ mode }} "$@"

# Before a workshop: fetch and build all that the day needs, so that it needs no network
prepare: rootfs _mdbook _shellcheck
    cargo fetch --locked
    cargo build --bins
    cargo test --no-run
    cargo test -q --test workshop -- prepare
    @just doctor

# Is this machine ready for the workbook? Names each problem and its fix; --fix clears leftovers
doctor *flags:
    #!/usr/bin/env bash
    set -uo pipefail
    # One line per thing the workbook needs: ✔, or ✘ with what to do. With --fix, it also
    # clears what an interrupted run can leave behind: mounts in this checkout, the
    # workbook's cgroups, and files in target/ that a run as root left root's.
    fix=false
    [ "${1:-}" = --fix ] && fix=true
    problems=0
    ok() { echo "✔ $*"; }
    no() { echo "✘ $1"; echo "    fix: $2"; problems=$((problems + 1)); }
    {{ as_root }}

    [ "$(uname -s)" = Linux ] && ok "Linux $(uname -r)" ||
        no "this is not Linux: namespaces and cgroups are Linux's" "use a Linux virtual machine (book: Setup)"
    if [ "$(id -u)" = 0 ]; then ok "root"
    elif command -v sudo >/dev/null; then ok "sudo, for runs as root (ROOTLESS=1 runs without)"
    else ok "no sudo: the steps run rootless (book: chapter 2, Without root)"; fi
    # Rootless runs need the kernel to let users make user namespaces (steps 2 to 5 check too).
    refused=
    [ "$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null)" = 1 ] &&
        refused=kernel.apparmor_restrict_unprivileged_userns=0
    [ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null)" = 0 ] &&
        refused=kernel.unprivileged_userns_clone=1
    [ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null)" = 0 ] &&
        refused=user.max_user_namespaces=15000
    if [ -z "$refused" ]; then ok "user namespaces, for rootless runs"
    elif [ "$(id -u)" = 0 ] || command -v sudo >/dev/null; then ok "no user namespaces for users (${refused%=*}): runs as root only"
    else no "no sudo, and the kernel refuses users user namespaces (${refused%=*})" "as root, once: sysctl $refused (book: Troubleshooting)"; fi
    # Rootless, a second user in the container (--user) needs a range of IDs of your own.
    ranged() { grep -qsE "^($(id -un)|$(id -u)):" "$1"; }
    if [ "$(id -u)" != 0 ] && [ -z "$refused" ]; then
        if command -v newuidmap >/dev/null && command -v newgidmap >/dev/null && ranged /etc/subuid && ranged /etc/subgid
        then ok "newuidmap, and IDs of your own in /etc/subuid and /etc/subgid: rootless --user works"
        else echo "  (rootless, --user needs the uidmap package and a range of IDs of your own: book: Troubleshooting)"; fi
    fi
    for ns in uts pid mnt ipc net; do
        [ -e /proc/self/ns/$ns ] || no "the kernel has no $ns namespaces" "use a kernel built with namespaces (any distribution's)"
    done
    ok "namespaces: uts pid mnt ipc net"
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        layout=v2 controllers=$(cat /sys/fs/cgroup/cgroup.controllers)
    elif [ -d /sys/fs/cgroup/unified ]; then
        layout=hybrid controllers=$(ls /sys/fs/cgroup)
    else
        layout=v1 controllers=$(ls /sys/fs/cgroup 2>/dev/null)
    fi
    missing=
    for c in memory pids cpu; do grep -qw "$c" <<<"$controllers" || missing="$missing $c"; done
    [ -z "$missing" ] && ok "cgroups: $layout, with memory, pids and cpu" ||
        no "cgroups ($layout) lack:$missing" "step 5 needs them: boot with them enabled, or leave out its limits"
    [ {{ mode }} = rootless ] && [ "$layout" != v2 ] &&
        echo "  (rootless, step 5's limits need cgroup v2, delegated to you: here they need root)"
    if command -v rustc >/dev/null; then
        version=$(rustc --version | cut -d' ' -f2)
        if printf '%s\n' 1.89.0 "$version" | sort -V -C; then ok "Rust $version"
        else no "Rust $version is older than 1.89" "rustup update"; fi
    else
        no "no Rust" "install it from https://rustup.rs"
    fi
    if [ -f rootfs/.built ]; then ok "rootfs/ built: $(paste -sd' ' rootfs/.built)"
    elif command -v apt-get >/dev/null; then no "rootfs/ not built yet" "just rootfs"
    else no "rootfs/ not built, and no apt-get to build it" "see rootfs/README.md"; fi
    command -v mdbook >/dev/null && ok "mdBook $(mdbook --version | cut -d' ' -f2)" ||
        no "no mdBook, for the book" "just prepare (or cargo install --locked mdbook@0.5.4)"

    # What an interrupted run can leave: a mount in this checkout (rootfs/ bound on itself,
    # its old root), the workbook's cgroups, root's files in target/.
    here=$(pwd)
    mounts=$(awk -v here="$here" 'index($5, here "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    if [ -z "$mounts" ]; then ok "no mount left in this checkout"
    elif $fix; then for m in $mounts; do as_root umount -l "$m" && echo "  unmounted $m"; done
    else no "mounts left in this checkout: $(echo $mounts)" "just doctor --fix"; fi
    cgroups=$(find /sys/fs/cgroup -type d \( -name 'byoc-*' -o -name byoc -o -name byoc-net \) 2>/dev/null |
        while read -r dir; do
            pid=${dir##*/byoc-}
            case "$pid" in *[!0-9]* | '') [ -z "$(ls -d "$dir"/*/ 2>/dev/null)" ] && echo "$dir" ;; *) kill -0 "$pid" 2>/dev/null || echo "$dir" ;; esac
        done | sort -r)
    if [ -z "$cgroups" ]; then ok "no cgroup of the workbook's left"
    elif $fix; then for c in $cgroups; do as_root rmdir "$c" 2>/dev/null && echo "  removed $c"; done
    else no "cgroups left: $(echo $cgroups)" "just doctor --fix"; fi
    if [ "$(id -u)" != 0 ] && [ -d target ] && [ -n "$(find target -user 0 -print -quit)" ]; then
        if $fix; then as_root chown -R "$(id -u):$(id -g)" target && echo "  target/ is yours again"
        else no "files in target/ belong to root, and stop your builds" "just doctor --fix"; fi
    else
        ok "target/ is yours"
    fi
    [ "$problems" = 0 ] && echo "Ready." || { echo "$problems to fix."; exit 1; }

# Fill rootfs/ with busybox and stress, unpacked from your distribution's packages
rootfs dir="rootfs":
    @rootfs/build.sh "$@"

# Everything CI checks: formatting, lints, every test (as root), the book, then the VM test
test: _root_for_tests rootfs _mdbook _uidmap _shellcheck && test-vm
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
    tests/tools/shellcheck.sh
    {{ if root_sudo == "" { "cargo test" } else { "cargo test --config 'target.\"cfg(all())\".runner = [\"sudo\", \"-E\"]'" } }}

    book/tools/check.sh
    @# The book's `just bench` works (three runs each: a smoke test, not a measurement).
    just bench 3 target/bench/smoke.csv >/dev/null

# What each step costs: `run /bin/true` in each step, beside bubblewrap, unshare and crun/runc
[no-exit-message]
bench runs="300" results="book/src/costs/results.csv": rootfs
    @book/tools/bench.sh "$@"

# Boot a throwaway pure cgroup-v2 VM, like a systemd laptop, and run tests/vm/tests.sh in it
test-vm: rootfs
    tests/vm/test-vm.sh

# The book at http://localhost:3000, rebuilt when a chapter, a step or a snapshot changes
book: _mdbook
    mdbook serve book --open

# Regenerate the book's diffs between steps (book/src/diffs/): run it after changing a step
diffs:
    book/tools/diffs.sh

# Check the book: diffs up to date, builds without a warning, includes, links, Run-it commands
book-check: _mdbook
    book/tools/check.sh

# The tests need root, rootless or not: without sudo, say so and how
[no-exit-message]
_root_for_tests:
    @[ "$(id -u)" = 0 ] || command -v sudo >/dev/null || { echo "error: just test needs root, for the containers and cgroups the tests make, and there is no sudo here: run it as root. (The steps, just check and just yours run without root: book, chapter 2, Without root.)" >&2; exit 1; }

# One line before each run: root or rootless, and why
_mode step:
    @echo "{{ step }}: {{ mode_why }}" >&2

_build:
    @cargo build --quiet --bins

# newuidmap and newgidmap, which the rootless tests with a range of IDs run (book: chapter 2)
_uidmap:
    @command -v newuidmap >/dev/null && command -v newgidmap >/dev/null || just _apt_install "the rootless tests" uidmap

# Install Debian or Ubuntu packages, for WHY, with apt-get, as root
[no-exit-message]
_apt_install why +packages:
    @tests/tools/apt-install.sh "$@"

# shellcheck, which `just test` lints every shell script with
_shellcheck:
    @command -v shellcheck >/dev/null || just _apt_install "just test" shellcheck

# mdBook at the version the book is written for
_mdbook:
    @mdbook --version 2>/dev/null | grep -qx 'mdbook v0.5.4' || cargo install --locked mdbook@0.5.4
