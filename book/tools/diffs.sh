#!/usr/bin/env bash
# Writes book/src/diffs/stepN.diff: `diff -u` of steps/step{N-1}/ against
# steps/stepN/, one file at a time, for every N whose two directories exist.
# The tests and the tables (a file named tests.rs, and seccomp's allowed.rs, the list of
# system calls) go to stepN-tests.diff instead, when a step changes any: a chapter shows
# them folded apart, so that its diff is the idea.
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

# The files of the tests-and-tables diff: their paths, relative to a step's directory.
aside='(^|/)(tests|allowed)\.rs$'

# diff_files OLD NEW: the diff of each file on stdin, a path relative to both directories.
diff_files() {
    local file
    while IFS= read -r file; do
        if [[ -f $1/$file && -f $2/$file ]]; then
            diff_one "a/$1/$file" "$1/$file" "b/$2/$file" "$2/$file"
        elif [[ -f $2/$file ]]; then
            diff_one /dev/null /dev/null "b/$2/$file" "$2/$file"
        else
            diff_one "a/$1/$file" "$1/$file" /dev/null /dev/null
        fi
    done
}

for n in $numbers; do
    old=steps/step$((n - 1))
    new=steps/step$n
    [[ -d $old ]] || continue
    # Every file in either directory, as a path relative to it; main.rs first: it is what
    # the chapter walks through; then the rest.
    files=$({ (cd "$old" && find . -type f -printf '%P\n'); (cd "$new" && find . -type f -printf '%P\n'); } |
        sort -u |
        awk '$0 == "main.rs" { print; next } { rest[++n] = $0 } END { for (i = 1; i <= n; i++) print rest[i] }')
    # (grep exits 1 when it selects nothing: no file of that kind is fine.)
    { grep -v -E "$aside" <<<"$files" || true; } | diff_files "$old" "$new" >"$out/step$n.diff"
    { grep -E "$aside" <<<"$files" || true; } | diff_files "$old" "$new" >"$out/step$n-tests.diff"
    # No test or table changed: no file, rather than an empty one to include.
    [[ -s $out/step$n-tests.diff ]] || rm "$out/step$n-tests.diff"
done
