#!/usr/bin/env bash
# tests/vm/setup.sh — install and cache what `just test-vm` needs to boot a throwaway VM.
#
#   qemu-system-x86   the emulator (installed with apt-get: the one step that needs root)
#   a Debian kernel   vmlinuz from linux-image-*-cloud-amd64, fetched with `apt-get download`
#                     and cached in $BYOC_VM_CACHE (see below)
# (The VM's userland is the static busybox of the repository's rootfs/, which `just rootfs`
# unpacks from busybox-static without installing it: nothing to install for that.)
#
# Idempotent: when everything is already there it only checks, in well under a second.
# On a clean Debian 12 machine it runs `apt-get update` first if apt has no package lists.
#
# Why the kernel is trusted: `apt-get download` checks the .deb against the sha256 in the
# Packages index, which is covered by the archive's signed InRelease. We then check the
# extracted vmlinuz against the package's own DEBIAN/md5sums, and record its sha256 in the
# cache, which this script (and run.sh) verify before every use.
#
# Why the cache lives under $HOME (XDG cache) and not in target/: the kernel has nothing to do
# with the Rust build, `cargo clean` should not cost a 27 MB download, and CI runs in a fresh
# clone on the same machine, where target/ starts empty but $HOME/.cache is still there.
# Override with BYOC_VM_CACHE=/some/dir.
set -euo pipefail

CACHE="${BYOC_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/byoc-vm}"
# The metapackage that always points at the current cloud kernel of this Debian release.
KERNEL_META="${BYOC_VM_KERNEL_META:-linux-image-cloud-amd64}"

say() { printf 'vm-setup: %s\n' "$*" >&2; }
die() { printf 'vm-setup: error: %s\n' "$*" >&2; exit 1; }

# Installing needs root (CI and this workplace run as root; a learner gets asked by sudo).
# Nothing else does: a warm run, and `apt-get download`, work as any user.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $* (no sudo here)"
    fi
}
export DEBIAN_FRONTEND=noninteractive
# apt-get as root, minus the one harmless line every install prints when apt-utils is missing.
apt_get() { as_root apt-get "$@" 2> >(grep -v '^debconf: delaying package configuration' >&2); }

pkg_installed() { # PKG -> true if dpkg has it fully installed
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# apt caches nothing useful on a fresh machine/container; update at most once per run.
APT_UPDATED=0
apt_update() {
    [ "$APT_UPDATED" = 1 ] && return 0
    say "apt-get update"
    apt_get update -qq
    APT_UPDATED=1
}
apt_has_lists() { # true if apt knows a candidate for PKG (i.e. `apt-get update` has run)
    # Capture first: `cmd | grep -q` fails under pipefail when grep exits before cmd is done.
    local policy
    policy="$(apt-cache policy "$1" 2>/dev/null)"
    grep -q 'Candidate: [^(]' <<<"$policy"
}

# ---------------------------------------------------------------- qemu
install_qemu() {
    apt_has_lists qemu-system-x86 || apt_update
    local -a install=(install -y -qq --no-install-recommends --no-remove)
    # First choice: the release's own qemu. --no-remove makes apt refuse (instead of silently
    # removing packages) when it conflicts with what is installed.
    if apt-get "${install[@]}" -s qemu-system-x86 >/dev/null 2>&1; then
        say "installing qemu-system-x86"
        apt_get "${install[@]}" qemu-system-x86 >/dev/null
        return
    fi
    # The known conflict: the machine has qemu-utils from <codename>-backports (10.x), which
    # bookworm's qemu-system-x86 7.2 would remove. Take qemu-system-x86 from backports too.
    local codename
    # shellcheck source=/dev/null # the host's own, read as it is at run time
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [ -n "$codename" ] || die "qemu-system-x86 cannot be installed and this is not a Debian release with a codename"
    local src=/etc/apt/sources.list.d/byoc-${codename}-backports.sources
    if ! grep -q "${codename}-backports/main" <<<"$(apt-cache policy)"; then
        say "adding ${codename}-backports to apt's sources ($src)"
        # Backports are pinned at priority 100 by the archive (NotAutomatic/ButAutomaticUpgrades),
        # so this changes nothing else on the machine unless asked for with -t.
        printf '%s\n' \
            "# Added by build-your-own-container tests/vm/setup.sh: qemu-system-x86 that matches qemu-utils" \
            "Types: deb" \
            "URIs: http://deb.debian.org/debian" \
            "Suites: ${codename}-backports" \
            "Components: main" \
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
            as_root tee "$src" >/dev/null
        APT_UPDATED=0
        apt_update
    fi
    local -a pkgs=(qemu-system-x86)
    # Name qemu-utils too, so apt upgrades it alongside rather than giving up on it.
    pkg_installed qemu-utils && pkgs+=(qemu-utils)
    say "installing ${pkgs[*]} from ${codename}-backports"
    apt_get "${install[@]}" -t "${codename}-backports" "${pkgs[@]}" >/dev/null ||
        die "could not install qemu-system-x86 (see apt's message above)"
}

kernel_cached() { [ -L "$CACHE/vmlinuz" ] && [ -f "$CACHE/overlay.ko" ] && [ -f "$CACHE/SHA256SUMS" ]; }

# Before installing anything: the kernel must come from somewhere. Debian's archive has it; an
# Ubuntu (or other) archive has no linux-image-cloud-amd64, and we would rather say so now.
if ! kernel_cached; then
    apt_has_lists "$KERNEL_META" || apt_update
    # shellcheck source=/dev/null # the host's own, read as it is at run time
    apt_has_lists "$KERNEL_META" ||
        die "apt offers no $KERNEL_META here ($(. /etc/os-release && echo "${PRETTY_NAME:-this system}")):" \
            "the test VM boots Debian's cloud kernel, which only a Debian archive has"
fi

if ! command -v qemu-system-x86_64 >/dev/null; then
    install_qemu
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing after installing qemu-system-x86"

# ---------------------------------------------------------------- kernel
# Cache layout:  $CACHE/vmlinuz -> vmlinuz-<kernel release>
#                $CACHE/vmlinuz-<kernel release>
#                $CACHE/SHA256SUMS   (sha256sum format, checked with sha256sum -c)
#                $CACHE/kernel.txt   (package name and version, for logs)
# A cached kernel is kept until it is deleted (or fails its checksum): Debian moves the
# metapackage on with each point release, and we do not want a 27 MB download every time.
if kernel_cached; then
    if (cd "$CACHE" && sha256sum --quiet -c SHA256SUMS) >/dev/null 2>&1; then
        exit 0 # warm path: everything present and verified
    fi
    say "cached kernel in $CACHE failed its sha256 check; fetching it again"
    rm -f "$CACHE"/vmlinuz* "$CACHE/overlay.ko" "$CACHE/SHA256SUMS" "$CACHE/kernel.txt"
fi

apt_has_lists "$KERNEL_META" || apt_update
kernel_pkg() { # the linux-image-<abi>-cloud-amd64 package the metapackage depends on
    local deps
    deps="$(apt-cache depends "$KERNEL_META" 2>/dev/null || true)"
    awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }' <<<"$deps"
}
pkg="$(kernel_pkg)"
[ -n "$pkg" ] || die "cannot tell which kernel package $KERNEL_META depends on"

mkdir -p "$CACHE"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/byoc-vm-setup.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# apt downloads as the unprivileged _apt user when run as root; let it write here.
chmod 0777 "$tmp"
fetch() { (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null 2>"$tmp/apt.err"); }
say "downloading $pkg (~27 MB) with apt-get download"
if ! fetch; then
    # Old package lists name a .deb the archive has since dropped (404): refresh and retry.
    APT_UPDATED=0
    apt_update
    pkg="$(kernel_pkg)"
    fetch || { cat "$tmp/apt.err" >&2; die "apt-get download $pkg failed"; }
fi
deb="$(ls "$tmp"/*.deb)"
version="$(dpkg-deb -f "$deb" Version)"

# Extract only boot/vmlinuz-* (14 MB of the 27 MB package) and the one module the tests load,
# overlayfs (a stock Debian loads it when step 4 first mounts one; the VM has no modprobe).
mkdir "$tmp/x"
dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$tmp/x" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/fs/overlayfs/overlay.ko'
kernels=("$tmp"/x/boot/vmlinuz-*)
[ -s "${kernels[0]}" ] || die "$pkg has no boot/vmlinuz-*"
vmlinuz="${kernels[0]##*/}"
overlay=$(cd "$tmp/x" && echo lib/modules/*/kernel/fs/overlayfs/overlay.ko)
[ -s "$tmp/x/$overlay" ] || die "$pkg has no overlay.ko"

# Tie the extracted file to the apt-verified package: compare with the package's md5sums.
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$tmp" ./md5sums
(cd "$tmp/x" && grep -e " boot/$vmlinuz\$" -e " $overlay\$" "$tmp/md5sums" | md5sum --quiet -c -) ||
    die "boot/$vmlinuz or $overlay does not match $pkg's md5sums"

mv "$tmp/x/boot/$vmlinuz" "$CACHE/$vmlinuz"
mv "$tmp/x/$overlay" "$CACHE/overlay.ko"
ln -sfn "$vmlinuz" "$CACHE/vmlinuz"
(cd "$CACHE" && sha256sum "$vmlinuz" overlay.ko >SHA256SUMS)
printf '%s %s %s\n' "$pkg" "$version" "$vmlinuz" >"$CACHE/kernel.txt"
say "cached $pkg $version: $CACHE/$vmlinuz ($(du -h "$CACHE/$vmlinuz" | cut -f1))"
