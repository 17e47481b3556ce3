#!/usr/bin/env bash
# Writes book/src/diffs/stepN.diff: `diff -u` of steps/step{N-1}/ against
# steps/stepN/, one file at a time, for every N whose two directories exist.
#
#   book/tools/diffs.sh            write into book/src/diffs/ (what `just diffs` runs)
#   book/tools/diffs.sh DIR        write into DIR instead (what check.sh does)
#
# The output depends on nothing but the files: no timestamps (each side gets a
# --label such as a/steps/step1/main.rs), files in C-locale order, a file that
# is new in stepN diffed against /dev/null (and a removed one the other way).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$root/book/src/diffs}
mkdir -p "$out"
rm -f "$out"/step*.diff

cd "$root"
# The step numbers that exist, in numeric order.
numbers=$(find steps -mindepth 1 -maxdepth 1 -type d -name 'step*' -printf '%f\n' 2>/dev/null |
    sed -n 's/^step\([0-9][0-9]*\)$/\1/p' | sort -n)

# diff_one LABEL_A FILE_A LABEL_B FILE_B: diff -u, where "no difference" is fine.
diff_one() {
    local status=0
    diff -u --label "$1" --label "$3" "$2" "$4" || status=$?
    if ((status > 1)); then
        echo "diffs.sh: diff failed on $2 and $4" >&2
        exit 2
    fi
}

for n in $numbers; do
    old=steps/step$((n - 1))
    new=steps/step$n
    [[ -d $old ]] || continue
    {
        # Every file in either directory, as a path relative to it.
        { (cd "$old" && find . -type f -printf '%P\n'); (cd "$new" && find . -type f -printf '%P\n'); } |
            sort -u |
            # main.rs first: it is what the chapter walks through; then the rest.
            awk '$0 == "main.rs" { print; next } { rest[++n] = $0 } END { for (i = 1; i <= n; i++) print rest[i] }' |
            while IFS= read -r file; do
                if [[ -f $old/$file && -f $new/$file ]]; then
                    diff_one "a/$old/$file" "$old/$file" "b/$new/$file" "$new/$file"
                elif [[ -f $new/$file ]]; then
                    diff_one /dev/null /dev/null "b/$new/$file" "$new/$file"
                else
                    diff_one "a/$old/$file" "$old/$file" /dev/null /dev/null
                fi
            done
    } >"$out/step$n.diff"
done
