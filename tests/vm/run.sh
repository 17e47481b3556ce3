#!/usr/bin/env bash
# tests/vm/run.sh BIN_DIR ROOTFS_DIR TEST_SCRIPT [DATA_DIR]
#
# Boots Debian's cloud kernel under QEMU (software emulation) with a busybox initramfs that holds
#   /init                  tests/vm/init: makes the VM look like a systemd laptop, runs the tests
#   /bin/busybox           the VM's whole userland: ROOTFS_DIR's static busybox
#   /opt/byoc/bin/*        the static binaries found directly in BIN_DIR (on the tests' PATH)
#   /opt/byoc/rootfs/      a copy of ROOTFS_DIR (the container's root file system)
#   /opt/byoc/tests.sh     TEST_SCRIPT, run with `sh` from /opt/byoc
#   /opt/byoc/data/        a copy of DATA_DIR, if given (files the tests read)
# and exits with the tests' exit status, which the VM reports as a `BYOC-VM-EXIT=<n>` line.
# If the VM fails to boot, times out or powers off without that line, this exits non-zero with
# a one-line reason and the console's last lines: a broken VM must never look like a pass.
#
# Needs what tests/vm/setup.sh installs and caches (run it first). Does not need root.
# Knobs (environment):
#   BYOC_VM_TIMEOUT   seconds before the VM is killed (default 120)
#   BYOC_VM_MEM       guest memory (default 1G: the tests run 300 MB workloads in containers)
#   BYOC_VM_SMP       guest CPUs (default 2, like any laptop; boots no slower than 1 under TCG)
#   BYOC_VM_VERBOSE=1 stream the whole console, not just the tests' output
#   BYOC_VM_WORK      where the initramfs and console.log go (default <repo>/target/vm)
#   BYOC_VM_CACHE     the kernel cache (same default as setup.sh)
#   BYOC_VM_APPEND    extra kernel command-line arguments
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CACHE="${BYOC_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/byoc-vm}"
WORK="${BYOC_VM_WORK:-$repo/target/vm}"
TIMEOUT="${BYOC_VM_TIMEOUT:-120}"
MEM="${BYOC_VM_MEM:-1G}"
SMP="${BYOC_VM_SMP:-2}"
TAIL_LINES=40

die() { printf 'vm: error: %s\n' "$*" >&2; exit 2; }

[ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: $0 BIN_DIR ROOTFS_DIR TEST_SCRIPT [DATA_DIR]"
bin_dir="$1" rootfs_dir="$2" test_script="$3" data_dir="${4:-}"
[ -d "$bin_dir" ] || die "BIN_DIR $bin_dir is not a directory"
[ -d "$rootfs_dir" ] || die "ROOTFS_DIR $rootfs_dir is not a directory (run \`just rootfs\`)"
[ -f "$test_script" ] || die "TEST_SCRIPT $test_script not found"

# ---------------------------------------------------------------- what setup.sh provides
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found: run tests/vm/setup.sh"
# The initramfs has no libc, so everything in it must be statically linked. readelf (binutils,
# there wherever gcc is) tells; without it, skip the check rather than fail.
is_dynamic() {
    command -v readelf >/dev/null || return 1
    local headers
    headers="$(readelf -lW "$1" 2>/dev/null)" # not piped into grep -q: pipefail + SIGPIPE
    grep -q 'program interpreter' <<<"$headers"
}
# The VM's userland, and our cpio, is the container's own busybox: `just rootfs` unpacks it from
# Debian's busybox-static, so nothing needs installing for it.
busybox="$rootfs_dir/bin/busybox"
{ [ -f "$busybox" ] && [ -x "$busybox" ]; } || die "$busybox not found: run \`just rootfs\`"
busybox="$(cd "$rootfs_dir/bin" && pwd)/busybox" # absolute: the packing below runs elsewhere
if is_dynamic "$busybox"; then
    die "$busybox is dynamically linked: the VM has no libc, it needs a static busybox"
fi
kernel="$CACHE/vmlinuz"
[ -e "$kernel" ] || die "no kernel in $CACHE: run tests/vm/setup.sh"
(cd "$CACHE" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1) ||
    die "the cached kernel in $CACHE fails its sha256 check: run tests/vm/setup.sh"

# ---------------------------------------------------------------- pack the initramfs
mkdir -p "$WORK"
stage="$(mktemp -d "$WORK/initramfs.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,opt/byoc/bin,opt/byoc/rootfs}
cp "$busybox" "$stage/bin/busybox"
cp "$here/init" "$stage/init"
cp "$CACHE/overlay.ko" "$stage/opt/byoc/overlay.ko"
chmod 0755 "$stage/init"
cp "$test_script" "$stage/opt/byoc/tests.sh"
cp -a "$rootfs_dir/." "$stage/opt/byoc/rootfs/"
if [ -n "$data_dir" ]; then
    [ -d "$data_dir" ] || die "DATA_DIR $data_dir is not a directory"
    cp -a "$data_dir" "$stage/opt/byoc/data"
fi

# Only executables directly in BIN_DIR: a cargo target dir also holds deps/, build/, *.d, ...
nbins=0
for f in "$bin_dir"/*; do
    { [ -f "$f" ] && [ -x "$f" ]; } || continue
    # A dynamically linked binary would fail in the VM with a baffling "not found".
    if is_dynamic "$f"; then
        die "$f is dynamically linked; build with RUSTFLAGS='-C target-feature=+crt-static' --target x86_64-unknown-linux-gnu"
    fi
    # A debug build is ~24 MB per step, nearly all DWARF: drop it (symbols stay, so panics and
    # backtraces still name functions). The initramfs shrinks ~10x and the VM boots faster.
    if command -v strip >/dev/null; then
        strip --strip-debug -o "$stage/opt/byoc/bin/${f##*/}" "$f"
    else
        cp "$f" "$stage/opt/byoc/bin/"
    fi
    nbins=$((nbins + 1))
done
[ "$nbins" -gt 0 ] || die "no executables in BIN_DIR $bin_dir"

initramfs="$WORK/initramfs.cpio"
# -R 0:0: everything belongs to root in the VM even when a non-root user packs it.
# Not compressed: under emulation the kernel's gunzip is slow (boot ~0.3 s faster without it),
# and QEMU loads a 20 MB file in no time.
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
    "$busybox" cpio -o -H newc -R 0:0 >"$initramfs" 2>/dev/null)

# ---------------------------------------------------------------- boot
log="$WORK/console.log"
: >"$log"
# No `quiet`: the full boot log costs nothing measurable (~350 lines) and makes the console's last
# lines worth reading when the VM fails to boot. Only the tests' lines are shown live, and /init
# turns kernel messages off the console (dmesg -n 1) before the tests start.
# cgroup_no_v1=all: no v1 controller can be mounted, as on a laptop running pure cgroup v2.
append="console=ttyS0 panic=-1 cgroup_no_v1=all ${BYOC_VM_APPEND:-}"
# -accel tcg: /dev/kvm on these machines is a nested hypervisor that stock kernels hang on.
# -no-reboot + panic=-1: a kernel panic (e.g. /init dying) ends QEMU at once instead of looping.
# -cpu max: TCG's fullest CPU model (RDRAND for the kernel's RNG, modern instructions).
qemu=(qemu-system-x86_64 -accel tcg -cpu max -smp "$SMP" -m "$MEM"
    -nodefaults -display none -no-reboot -serial stdio
    -kernel "$kernel" -initrd "$initramfs" -append "$append")

printf 'vm: booting %s with %s (%s initramfs, %s binaries), timeout %ss\n' \
    "$(cut -d' ' -f1,2 "$CACHE/kernel.txt" 2>/dev/null || basename "$(readlink "$kernel")")" \
    "$(basename "$test_script")" "$(du -h "$initramfs" | cut -f1)" "$nbins" "$TIMEOUT" >&2
start=$(date +%s.%N)
set +e
# The console goes whole to $log; the tests' lines (between the BEGIN and EXIT markers) are shown
# as they come, so a slow run shows progress. Serial lines end in \r\n: drop the \r.
# --foreground keeps QEMU in our process group, so Ctrl-C stops it too (not only this script).
timeout --foreground --kill-after=5 "$TIMEOUT" "${qemu[@]}" </dev/null 2>&1 |
    tee "$log" |
    awk -v all="${BYOC_VM_VERBOSE:-0}" '
        { sub(/\r$/, "") }
        /^BYOC-VM-(EXIT|UPTIME)=/ { on = 0 }
        /^BYOC-TRANSCRIPT / { next } # files for the host, not for the eye
        on || all == 1 { print; fflush() }
        /^BYOC-VM-BEGIN$/ { on = 1 }'
qemu_status=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

# ---------------------------------------------------------------- verdict
marker="$(tr -d '\r' <"$log" | sed -n 's/^BYOC-VM-EXIT=\([0-9]\{1,3\}\)$/\1/p' | tail -n 1)"
uptime="$(tr -d '\r' <"$log" | sed -n 's/^BYOC-VM-UPTIME=\([0-9.]*\)$/\1/p' | tail -n 1)"

fail() { # REASON: one clear line, then the console's last lines
    {
        printf 'vm: FAILED: %s\n' "$1"
        printf 'vm: last %s console lines (full log: %s):\n' "$TAIL_LINES" "$log"
        tr -d '\r' <"$log" | tail -n "$TAIL_LINES" | sed 's/^/  | /'
        printf 'vm: FAILED: %s\n' "$1"
    } >&2
    exit 1
}

if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    fail "the VM timed out after ${TIMEOUT}s (BYOC_VM_TIMEOUT)${marker:+ after reporting exit $marker}"
elif [ "$qemu_status" -ne 0 ]; then
    fail "qemu-system-x86_64 exited with status $qemu_status"
elif [ -z "$marker" ]; then
    if grep -qa 'byoc-init: FATAL' "$log"; then
        fail "$(tr -d '\r' <"$log" | grep -a -m1 -o 'byoc-init: FATAL.*')"
    elif grep -qa '^qemu-system-x86_64: terminating on signal' "$log"; then
        fail "QEMU was stopped by a signal (interrupted?) before the tests reported"
    elif grep -qa 'Kernel panic' "$log"; then
        fail "kernel panic: $(tr -d '\r' <"$log" | grep -a -m1 -o 'Kernel panic.*')"
    elif ! grep -qa '^BYOC-VM-BEGIN' "$log"; then
        fail "the VM powered off before the tests started (did it boot?)"
    else
        fail "the VM powered off without reporting the tests' exit status (BYOC-VM-EXIT)"
    fi
fi

printf 'vm: tests exited %s (guest uptime at exit %ss, VM wall time %ss)\n' \
    "$marker" "${uptime:-?}" "$elapsed" >&2
exit "$marker"
