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
    @tests/workshop/doctor.sh "$@"

# Fill rootfs/ with busybox and stress, unpacked from your distribution's packages
rootfs dir="rootfs":
    @rootfs/build.sh "$@"

# Everything CI checks: formatting, lints, every test (as root), the book, then the VM test
test: _root_for_tests rootfs _mdbook _uidmap _shellcheck && test-vm
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
    tests/tools/shellcheck.sh
    {{ if root_sudo == "" { "cargo test" } else { "cargo test --config 'target.\"cfg(all())\".runner = [\"sudo\", \"-E\"]'" } }}

    book/tools/check.sh --self-test
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

# The book at http://localhost:3000, rebuilt as you edit; --workshop: each stage's answer folded
book *flags: _mdbook
    @book/tools/edition.sh serve "$@"

# Regenerate the book's diffs between steps (book/src/diffs/): run it after changing a step
diffs:
    book/tools/diffs.sh

# Check the book: diffs, includes, links, page sizes, glossary links, commands tested (--self-test)
book-check *flags: _mdbook
    book/tools/check.sh "$@"

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

# mdBook at the version the book is written for: its official prebuilt release, in seconds,
# where GitHub can be reached; else built from crates.io, which takes about 10 minutes
_mdbook:
    #!/usr/bin/env bash
    set -uo pipefail
    version=0.5.4
    mdbook --version 2>/dev/null | grep -qx "mdbook v$version" && exit 0
    case $(uname -m) in
    x86_64) release=x86_64-unknown-linux-gnu ;;
    aarch64) release=aarch64-unknown-linux-musl ;;
    *) release= ;;
    esac
    url=https://github.com/rust-lang/mdBook/releases/download/v$version/mdbook-v$version-$release.tar.gz
    bin=${CARGO_HOME:-$HOME/.cargo}/bin work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    # Quick to fail where GitHub cannot be reached: 5 s to connect, 2 min for 10 MB.
    if [ -n "$release" ] && curl -fsSL --connect-timeout 5 --max-time 120 "$url" 2>/dev/null | tar -xzf - -C "$work" 2>/dev/null &&
        "$work/mdbook" --version 2>/dev/null | grep -qx "mdbook v$version"; then
        mkdir -p "$bin" && mv "$work/mdbook" "$bin/mdbook" && echo "mdBook $version: its release, in $bin" >&2 && exit 0
    fi
    echo "mdBook $version: no prebuilt release from GitHub here: building it from crates.io (about 10 minutes)" >&2
    cargo install --locked "mdbook@$version"
