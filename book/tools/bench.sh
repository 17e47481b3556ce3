#!/usr/bin/env bash
# book/tools/bench.sh [RUNS] [RESULTS]: what `just bench` runs, after `just rootfs`. What each step
# costs, for the book's "What each step costs": `run /bin/true` in each step, beside bubblewrap,
# unshare and crun/runc, and 100 MB through step 4's `run cat` (stdin, the relay, stdout) beside
# bubblewrap's, RUNS times each (default 300); the results go to RESULTS (default
# book/src/costs/results.csv, relative to the repository's root) and the chart of `run /bin/true`
# beside them.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit
runs=${1:-300} results=${2:-book/src/costs/results.csv}
# Run a command as root, through sudo unless we are root.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# What it needs, installed when missing: hyperfine and bubblewrap, and Rust's musl target.
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v bwrap >/dev/null || missing+=(bubblewrap)
if [ ${#missing[@]} -gt 0 ]; then just _apt_install "just bench" "${missing[@]}" || exit; fi
# Release builds, static with musl, as many Rust tools ship: no dynamic loader, and none of
# glibc's start-up probing of the CPU, at each of a run's three execs (the runtime, its
# child, the command).
target=$(uname -m)-unknown-linux-musl
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    command -v rustup >/dev/null || { echo "just bench builds for $target, which needs rustup: https://rustup.rs" >&2; exit 1; }
    rustup target add "$target" || exit
fi
cargo build -q --release --bins --target "$target" --target-dir target/bench || exit
bin=target/bench/$target/release
rootfs=$(realpath rootfs)
bwrap="bwrap --unshare-all --new-session --die-with-parent --bind $rootfs / --proc /proc --dev /dev --tmpfs /tmp"
# 100 MB for `cat` to copy. hyperfine -N runs no shell, and gives no stdin (Debian 12's 1.15 has no
# --input): sh -c redirects it, as it would for you. Through pipes, the bytes go as step 4's relay
# makes them go, busybox's cat at each end: the same in and out, without the relay.
copy=target/bench/100MB
[ "$(stat -c %s "$copy" 2>/dev/null)" = 100000000 ] || head -c 100000000 /dev/zero >"$copy" || exit
cat="$rootfs/bin/busybox cat"
benches=(
    -n "step 1" "$bin/step1 run /bin/true"
    -n "step 2" "$bin/step2 run /bin/true"
    -n "step 3" "$bin/step3 run /bin/true"
    -n "step 4" "$bin/step4 run /bin/true"
    -n "step 5" "$bin/step5 run /bin/true"
    -n "step 5 --memory 100m" "$bin/step5 run --memory 100m /bin/true"
    -n "bwrap" "$bwrap /bin/true"
    -n "unshare" "unshare --mount --uts --ipc --net --pid --fork --root $rootfs /bin/true"
    -n "step 4 cat 100 MB" "sh -c '$bin/step4 run cat <$copy'"
    -n "bwrap cat 100 MB" "sh -c '$bwrap cat <$copy'"
    -n "bwrap cat 100 MB through pipes" "sh -c '$cat <$copy | $bwrap cat | $cat'"
)
# An OCI runtime, when there is one that can run here: a bundle of the rootfs and its spec.
bundle=$(realpath -m target/bench/bundle)
for oci in crun runc; do
    command -v "$oci" >/dev/null || continue
    if ! (rm -rf "$bundle" && mkdir -p "$bundle" && cd "$bundle" && "$oci" spec); then continue; fi
    sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"sh"/"\/bin\/true"/' \
        -e "s#\"path\": \"rootfs\"#\"path\": \"$rootfs\"#" "$bundle/config.json"
    if why=$(as_root "$oci" run --bundle "$bundle" byoc-bench 2>&1); then
        benches+=(-n "$oci" "$oci run --bundle $bundle byoc-bench")
    else
        echo "$oci: left out, it cannot run here: $why" >&2
    fi
done
csv=$(mktemp)
warmup=$((runs < 50 ? runs : 50))
as_root hyperfine -N --style basic --warmup "$warmup" --runs "$runs" --export-csv "$csv" "${benches[@]}" || exit
mkdir -p "$(dirname "$results")"
cat "$csv" >"$results"
rm -f "$csv"
book/tools/chart.sh "$results" >"${results%.csv}.svg"
# The book's questions, by the medians (a busy machine's outliers move the means).
awk -F, '{ median[$1] = $4 * 1000 } END {
    printf "step 4 / bwrap: %.2fx\n", median["step 4"] / median["bwrap"]
    printf "step 5 --memory 100m - step 4: %+.2f ms\n", median["step 5 --memory 100m"] - median["step 4"]
    printf "step 4 cat / bwrap cat: %.2fx\n", median["step 4 cat 100 MB"] / median["bwrap cat 100 MB"]
    printf "step 4 cat / bwrap cat through pipes: %.2fx\n", median["step 4 cat 100 MB"] / median["bwrap cat 100 MB through pipes"]
}' "$results"
echo "results in $results, chart in ${results%.csv}.svg"

