#!/usr/bin/env bash
# tests/vm/test-vm.sh: what `just test-vm` runs. From the repository's root, after `just rootfs`:
#   1. on a host that is not x86_64 or not Debian, skip (or, in CI, fail): see below;
#   2. tests/vm/setup.sh     install qemu, cache the kernel (instant when done);
#   3. build the step binaries statically into target/static (incremental: instant when done);
#   4. tests/vm/run.sh       boot the VM, run tests/vm/tests.sh in it;
#   5. compare the transcripts of the book that the VM ran with the snapshots (vm_transcripts).
# Run as yourself, not with sudo: only setup.sh's apt-get needs root, and it asks sudo for that
# itself; as root, cargo would leave root-owned files in target/, and the kernel cache would go to
# root's home.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."

# skip WHY: where the VM cannot run, say why in one line and pass, for a learner's machine;
# but CI must not silently lose the test, so there it fails.
skip() {
    case "${CI:-}" in
    "" | false | 0)
        echo "vm: skipped: $*" >&2
        exit 0
        ;;
    *)
        echo "vm: error: $* (CI=$CI must run the VM test)" >&2
        exit 1
        ;;
    esac
}

# The VM is an amd64 one: Debian's cloud-amd64 kernel under qemu-system-x86_64, with our binaries
# built for x86_64-unknown-linux-gnu. Elsewhere (an arm64 Linux VM on a Mac, say) QEMU would have
# to emulate another architecture and we would need a cross toolchain: not worth it for a learner.
arch="$(uname -m)"
[ "$arch" = x86_64 ] || skip "the VM test needs an x86_64 (amd64) host to boot its amd64 kernel, and this one is $arch"
# The kernel is Debian's cloud kernel, from the host's own package archive: Ubuntu's has none.
# shellcheck source=/dev/null # the host's own, read as it is at run time
distro="$(. /etc/os-release && echo "${ID:-unknown}")"
[ "$distro" = debian ] || skip "the VM test boots Debian's cloud kernel, from a Debian host's package archive, and this host is $distro"

"$here/setup.sh"

# The VM has no libc: the steps must be static executables. glibc's +crt-static gives
# static-pie binaries. --target keeps the flag off build scripts and proc-macros (which must
# stay dynamic, to be loaded by the compiler); target/static keeps the normal build untouched.
echo "vm: building the static step binaries in target/static" >&2
RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --bins --target x86_64-unknown-linux-gnu --target-dir target/static

# What the book shows, for the VM to run on its kernel (tests/vm/transcripts.rs says why).
data=target/vm/data
rm -rf "$data" target/vm/transcripts
mkdir -p "$data" target/vm/transcripts
cargo test --quiet --test vm_transcripts -- list >"$data/transcripts.list"

status=0
"$here/run.sh" target/static/x86_64-unknown-linux-gnu/debug rootfs "$here/tests.sh" "$data" || status=$?

# The VM printed each transcript as `BYOC-TRANSCRIPT NAME BASE64` lines: one file each.
tr -d '\r' <target/vm/console.log |
    awk '$1 == "BYOC-TRANSCRIPT" { print $3 >("target/vm/transcripts/" $2 ".b64") }'
for encoded in target/vm/transcripts/*.b64; do
    [ -e "$encoded" ] || break
    base64 -d "$encoded" >"${encoded%.b64}.txt"
    rm "$encoded"
done
cargo test --quiet --test vm_transcripts -- compare || status=1
exit "$status"
