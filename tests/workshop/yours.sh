#!/usr/bin/env bash
# tests/workshop/yours.sh MODE N [ARGS…]: what `just yours N ARGS…` runs, after `just rootfs`;
# MODE is the justfile's: root, sudo or rootless.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit
sudo=()
[ "$1" = sudo ] && sudo=(sudo)
step=$2
shift 2
[ -f "steps/yours/step$step/main.rs" ] || { echo "You have no step $step yet: \`just exercise $step\` makes it." >&2; exit 1; }
# Your step, built as you, with the reference's code for the pieces still todo!() (the
# workshop's program says which, on one line): each part's Check your work runs on your code.
exe=$(cargo test -q --no-run --test workshop --message-format=json | grep '"name":"workshop"' |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p') || exit
program=$("$exe" yours "$step") || exit
just _mode "just yours $step"
# Step 1 makes no namespace, and can do nothing that you cannot: it runs as `just step1`
# runs the reference, on the host, so that what it shows is what chapter 1 says.
if [ "$step" = 1 ]; then exec "${sudo[@]}" "$program" "$@"; fi
# In a throwaway stand-in for the host, for 15 minutes at most: a step that is still
# wrong cannot harm the real one, and what it would have done is said after the run.
report=$(mktemp)
"${sudo[@]}" tests/tools/safety-net.sh "$report" 900 "$program" "$@"
status=$?
sed -n 's/^harm /safety net: /p' "$report" >&2
rm -f "$report"
exit "$status"
