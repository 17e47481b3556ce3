#!/usr/bin/env bash
# tests/tools/shellcheck.sh: what `just test` lints with shellcheck, after `just _shellcheck`:
# every shell script that git tracks, by its name (*.sh) or by its #! line (tests/vm/init, .ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
scripts=()
while IFS= read -r -d '' file; do
    if [[ $file == *.sh ]] || head -n 1 "$file" | grep -qE '^#!.*[/ ](ba|da)?sh( |$)'; then
        scripts+=("$file")
    fi
done < <(git ls-files -z)
shellcheck "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts, no finding"
