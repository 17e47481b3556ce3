#!/usr/bin/env bash
# tests/workshop/check.sh MODE [WHAT…]: what `just check` runs, after `just rootfs`; MODE is the
# justfile's: root, sudo or rootless.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit
mode=$1
shift
# The checks' program: built as you; run as root, which the containers need, or, rootless,
# as you, with a safety net of your own (book: Workshop, Without root). It builds your
# steps as you, and runs each in the safety net (book: Workshop).
exe=$(cargo test -q --no-run --test workshop --message-format=json | grep '"name":"workshop"' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p') || exit
just _mode "just check"
if [ "$mode" = sudo ]; then exec sudo env CARGO="$(command -v cargo)" "$exe" check "$@"; fi
exec "$exe" check "$@"
