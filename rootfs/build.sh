#!/usr/bin/env bash
# rootfs/build.sh [DIR]: what `just rootfs [DIR]` runs. DIR, relative to the repository's root as
# in `just rootfs DIR`, defaults to rootfs/, this script's own directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Build the container's root filesystem in $1 (default: rootfs): a static
# busybox (sh, ls, ps, ip, mount...) plus `stress` for the cgroup chapters.
# Both come from Debian/Ubuntu packages that we unpack, not install: the host
# stays untouched and nothing here needs root.
target=${1:-rootfs}
packages=(busybox-static stress)

# Built already? Then stop here, quietly: a re-run is instant and changes
# nothing (delete $target/.built to rebuild).
if [[ -f $target/.built && -x $target/bin/busybox && -x $target/usr/bin/stress ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    cat >&2 <<EOF
error: apt-get not found: this recipe unpacks Debian/Ubuntu packages.
Elsewhere, put these in $target/ by hand, then run \`touch $target/.built\`:
  bin/busybox            a statically linked busybox (your distribution's, or busybox.net's)
  bin/sh, usr/bin/ls...  relative links to it, one per line of \`bin/busybox --list-full\`
  usr/bin/stress         stress, and each library \`ldd\` lists for it at the same path
  proc sys dev tmp root home   empty directories
  etc/passwd etc/group   users root, nobody and learner (uid 1000), their groups
EOF
    exit 1
fi

# A scratch directory for the .deb files and their unpacked contents,
# removed however the script ends.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debs=$work/debs staging=$work/staging
mkdir "$debs" "$staging"

# As root, apt downloads as its unprivileged user _apt, which cannot write to
# our private scratch directory and would warn: stay root for the download.
apt_options=()
if [[ $EUID -eq 0 ]]; then apt_options=(-o APT::Sandbox::User=root); fi

echo "downloading ${packages[*]} (not installing them)"
status=0
(cd "$debs" && apt-get download -q "${apt_options[@]}" "${packages[@]}") 2>"$work/errors" || status=$?
cat "$work/errors" >&2   # apt's own warnings and errors, if any
if ((status != 0)); then
    if grep -q -e 'Unable to locate package' -e 'no installation candidate' "$work/errors"; then
        echo "error: apt does not know a package we need. Run \`sudo apt-get update\` and retry" \
             "(on Ubuntu, stress is in 'universe': \`sudo add-apt-repository universe\` first)." >&2
    else
        echo "error: apt-get download failed: its package lists are probably stale (404 errors)" \
             "or the network is down. Run \`sudo apt-get update\` and retry." >&2
    fi
    exit 1
fi

# dpkg-deb -x unpacks a package's files without running its install scripts.
for deb in "$debs"/*.deb; do
    dpkg-deb -x "$deb" "$staging"
done

# busybox is one static binary that acts as ls, sh, ps... according to the
# name it is called by. Link every applet to it with a *relative* link
# (usr/bin/ls -> ../../bin/busybox), which resolves both inside the container
# and from the host; an absolute /bin/busybox would point at the host's.
echo "installing busybox and its applets"
busybox=$staging/bin/busybox
[[ -f $busybox ]] || busybox=$staging/usr/bin/busybox   # newer packages: usr/bin
install -D -m 755 "$busybox" "$target/bin/busybox"
for applet in $("$target/bin/busybox" --list-full); do
    case $applet in
        bin/busybox | linuxrc) continue ;;   # itself; an initrd's init
    esac
    mkdir -p "$target/${applet%/*}"      # bin, sbin, usr/bin or usr/sbin
    ln -sfr "$target/bin/busybox" "$target/$applet"
done

# stress is linked dynamically: copy exactly the libraries ldd lists, the
# dynamic loader included, to the same absolute paths under the rootfs, where
# the loader will look for them inside the container.
echo "installing stress and its libraries"
install -D -m 755 "$staging/usr/bin/stress" "$target/usr/bin/stress"
libraries=$(ldd "$staging/usr/bin/stress")
if grep -q 'not found' <<<"$libraries"; then
    echo "error: stress needs libraries this host lacks:" >&2
    grep 'not found' <<<"$libraries" >&2
    exit 1
fi
while read -r library; do
    cp -L --parents "$library" "$target"   # -L: the file, not a symlink to it
done < <(grep -o '/[^ ]*' <<<"$libraries")

# Mount points and the home directories, which the container expects to find.
# oldrootfs/ is where step 3 puts the host's old root (book: chapter 3); it is
# made here, once, so that no run has to make it, or may remove it.
mkdir -p "$target"/{proc,sys,dev,tmp,oldrootfs,root,home/learner,etc}
chmod 1777 "$target/tmp"   # anyone may write, like the host's /tmp

# Just enough users and groups for `id` and `ls -l` to show names.
cat >"$target/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
learner:x:1000:1000:learner:/home/learner:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$target/etc/group" <<'EOF'
root:x:0:
learner:x:1000:
nogroup:x:65534:
EOF

# Written last: it exists only if everything above succeeded.
for deb in "$debs"/*.deb; do
    # shellcheck disable=SC2016 # ${Package} and ${Version} are dpkg-deb's fields, not ours
    dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb"
done >"$target/.built"
echo "$target/ is ready: $(paste -sd' ' "$target/.built") ($(du -sh "$target" | cut -f1))"
