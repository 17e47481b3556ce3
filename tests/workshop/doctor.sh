#!/usr/bin/env bash
# tests/workshop/doctor.sh [--fix]: what `just doctor` runs. The doctor is the workshop's code
# (tests/workshop/doctor.rs), built first if need be; before, what building it needs: Linux, and
# Rust 1.89 or later, which the doctor would name if it could run, said here as it says them.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit
cannot() { printf '✘ %s\n    fix: %s\n1 to fix.\n' "$1" "$2"; exit 1; }
[ "$(uname -s)" = Linux ] || cannot "this is not Linux: namespaces and cgroups are Linux's" "use a Linux virtual machine (book: Setup)"
{ command -v rustc >/dev/null && command -v cargo >/dev/null; } || cannot "no Rust" "install it from https://rustup.rs"
version=$(rustc --version | cut -d' ' -f2)
printf '%s\n' 1.89.0 "$version" | sort -V -C || cannot "Rust $version is older than 1.89" "rustup update"
# Root's files in target/ stop cargo there (which the doctor names, and --fix gives back to you):
# then the doctor is built in a directory of its own, removed after.
target=()
if [ "$(id -u)" != 0 ] && [ -d target ] && [ -n "$(find target -user 0 -print -quit)" ]; then
    elsewhere=$(mktemp -d)
    trap 'rm -rf "$elsewhere"' EXIT
    target=(--target-dir "$elsewhere")
fi
exe=$(cargo test -q --no-run "${target[@]}" --test workshop --message-format=json | grep '"name":"workshop"' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p') || exit
"$exe" doctor "$@"
