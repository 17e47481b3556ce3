#!/usr/bin/env bash
# Checks the book against the code and the tests; exits non-zero on any failure.
#
#   (a) diffs     book/src/diffs/*.diff are what book/tools/diffs.sh writes now: each
#                 stepN.diff, and each stepN-tests.diff of the tests and tables
#   (b) includes  every {{#include}} / {{#rustdoc_include}} in book/src names a
#                 file that exists and a part of it that is not empty (mdBook
#                 itself includes nothing, silently, for a missing anchor or a
#                 line range past the end), and that shows no `ANCHOR:` comment
#                 lines; one of a snapshot must start at the line after the
#                 snapshot's YAML header and run to its end
#   (c) whole     every line of the files that chapters quote whole (step 2's rootless.rs, step 4's
#                 parts, step 5's cgroup.rs and limits.rs) is in an included region
#   (d) chart     book/src/costs/results.svg is what book/tools/chart.sh draws
#                 from book/src/costs/results.csv, the results `just bench` wrote
#   (e) man       every manual page a chapter names is a link to man7.org
#   (f) build     `mdbook build` (the pinned version) succeeds and prints no
#                 warning or error: only INFO lines
#   (g) links     every href and src in the built HTML points to a file that
#                 exists, and its #fragment to an id in that file
#   (h) run-it    every `$ ` line in a "Run it" section (a heading of level 1 to 3
#                 that starts with "Run it") of the built book is the first line
#                 of some tests/snapshots/*.snap body: the book shows only
#                 commands that a snapshot test runs
#
# Pages a reader can read in one sitting, and that say what they name (book/tools/rules.pl
# reads the Markdown; its header says exactly what counts as prose, a run, a use of a term):
#   (i) size      no page has over 3,500 words of prose: words outside code blocks,
#                 {{#include}} lines, HTML comments and tags, link targets and images
#   (j) runs      no page has a run of over 250 words of prose without a code block
#                 (a transcript is one), an image, a list, a table or a folded box between
#   (k) glossary  on each page, the first use of each glossary term (a `## Term` of
#                 glossary.md, as a whole word, or a code span that is the term) is a
#                 link to glossary.md#term, or comes after one
#                 (i) and (j) leave out glossary.md and cheatsheet.md, reference pages
#                 read an entry at a time; (k) leaves out glossary.md, the target
#   (l) commands  every ```sh and ```console block of every page is an {{#include}} of a
#                 tests/snapshots/*.snap file (a command a test runs), or the line just
#                 before its fence says why not: `<!-- not run: REASON -->`; check.sh
#                 lists those, a line each
#   (m) pointers  each pointer of the workshop into the book, a stage's `read:` in
#                 tests/workshop/checks.rs and the "(chapter N, …)" of a `todo:` in
#                 tests/workshop/exercises.rs, is a link a reader can follow, written
#                     chapter 4, Part 2: The old root goes (book/src/step4/part2.md#the-old-root-goes)
#                 the page from the repository's root, then `#` and the heading's id
#                 (more than one for a pointer that names more than one section): the
#                 page is in the built book and in chapter N (SUMMARY.md's numbering,
#                 sub-chapters included), the id is a heading on it, and the pointer's
#                 text names that heading
#   (n) workshop  the workshop edition (book/tools/edition.sh build --workshop) builds
#                 with no warning, and shows each piece that tests/workshop/exercises.rs
#                 asks a learner to write only folded, behind "Show the reference", on its
#                 chapter's pages
#
# In this order: (c) reads what (b) found included; (g), (h) and (m) read the book that (f)
# built; (i) to (l) run before the build, (m) and (n) after (h).
#
# Usage: book/tools/check.sh              (from anywhere; the repository is found
#                                          from this script's own place)
#        book/tools/check.sh --self-test  plants a violation of each of (i) to (n) in a
#                                          copy of the book and shows that its rule fails
#        book/tools/check.sh --table      the pages' lines, words, blocks, longest run
# MDBOOK=/path/to/mdbook overrides which mdbook runs; it must be $pinned.
set -uo pipefail
export LC_ALL=C

pinned=0.5.4
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
book=$root/book
src=$book/src
tmp=$(mktemp -d "${TMPDIR:-/tmp}/book-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failures=0
fail() {
    printf 'check: FAIL (%s) %s\n' "$1" "$2" >&2
    failures=$((failures + 1))
}
pass() { printf 'check: ok   (%s) %s\n' "$1" "$2"; }

# ---------------------------------------------------------------------------
# --self-test: each of rules (i) to (n), shown to fail on a violation planted in a copy of
# the book, and to pass its near miss. The pages of the copy are the real ones, which may
# break the rules today: only the planted pages' findings are looked at.
# ---------------------------------------------------------------------------
# shellcheck disable=SC2016 # the backticks in single quotes below are Markdown's
self_test() {
    local repo=$tmp/repo planted out
    local mdbook=${MDBOOK:-$(command -v mdbook || echo "$HOME/.cargo/bin/mdbook")}
    mkdir -p "$repo/book" "$repo/tests/workshop"
    cp -r "$book/src" "$book/book.toml" "$book/tools" "$repo/book/"
    ln -s "$root/steps" "$repo/steps"
    ln -s "$root/tests/snapshots" "$repo/tests/snapshots"
    cp "$root/tests/workshop/exercises.rs" "$repo/tests/workshop/"
    planted=$repo/book/src
    # N words of prose, as a paragraph.
    words() { local i; for ((i = 1; i <= $1; i++)); do printf 'w%d ' "$i"; done; printf '\n'; }
    # Paragraphs of 100 words, N of them, each after a code block: 100 * N words, no run over 100.
    paragraphs() {
        local i
        for ((i = 1; i <= $1; i++)); do printf '\n```text\nx\n```\n\n'; words 100; done
    }

    # A heading's words are prose too: "# Planted" is one.
    { printf '# Planted\n'; paragraphs 34; printf '\n```text\nx\n```\n\n'; words 99; } >"$planted/planted-size-ok.md"
    { cat "$planted/planted-size-ok.md"; printf '\nmore\n'; } >"$planted/planted-size.md"
    { printf '# Planted\n\n'; words 249; } >"$planted/planted-run-ok.md"
    { printf '# Planted\n\n'; words 199; printf '\n## Heading\n\n'; words 50; } >"$planted/planted-run.md"
    { printf '# Planted\n\n'; words 200; printf '\n<details>\n<summary>s</summary>\n\n'; words 200; printf '\n</details>\n\n'; words 200; } \
        >"$planted/planted-run-folded.md"
    printf '\n## Frobnicator\n\nA planted term.\n' >>"$planted/glossary.md"
    printf '# Planted\n\nOne frobnicator, not linked.\n' >"$planted/planted-glossary.md"
    printf '# Planted\n\nA [frobnicator](glossary.md#frobnicator), then frobnicators and `frobnicator`.\n' \
        >"$planted/planted-glossary-ok.md"
    mkdir -p "$planted/sub"
    printf '# Planted\n\nAfter [one](../glossary.md#frobnicator), a frobnicator.\n' >"$planted/sub/planted-glossary-ok.md"
    printf '# Planted\n\nA [frobnicator elsewhere](https://example.com), then frobnicators.\n' \
        >"$planted/planted-glossary-elsewhere.md"
    cat >"$planted/planted-commands.md" <<'PAGE'
# Planted

```sh
echo typed by hand
```

<!-- not run: a planted reason -->
```console
$ echo typed by hand
```

```console
{{#include ../../tests/snapshots/run__step1_verbose.snap:5:}}
```

<!-- not run: a marker with a blank line after it does not count -->

```sh
echo typed by hand
```
PAGE
    out=$("$book/tools/rules.pl" pages "$planted")
    expect() {    # expect found|none WHAT PATTERN: whether a line of rules.pl's output matches PATTERN
        local found
        found=$(grep -P -e "$3" <<<"$out" | head -1)
        if [[ $1 == found && -n $found ]] || [[ $1 == none && -z $found ]]; then
            pass self-test "$2"
        elif [[ $1 == found ]]; then
            fail self-test "$2: no finding matching /$3/"
        else
            fail self-test "$2: rules.pl says $found"
        fi
    }
    expect found "(i) size: a page of 3,501 words of prose fails" '^size\tplanted-size\.md\t3501$'
    expect none "(i) size: a page of 3,500 words passes" '^size\tplanted-size-ok\.md\t'
    expect none "(j) runs: paragraphs of 100 words between code blocks pass" '^run\tplanted-size'
    expect found "(j) runs: 251 words across a heading fail" '^run\tplanted-run\.md:1-7\t251$'
    expect none "(j) runs: a run of 249 words passes" '^run\tplanted-run-ok\.md'
    expect none "(j) runs: 200 words, a folded box of 200, 200 words pass" '^run\tplanted-run-folded\.md'
    expect found "(k) glossary: a term's first use without a link fails" '^glossary\tplanted-glossary\.md:3\tfrobnicator\tglossary\.md#frobnicator$'
    expect none "(k) glossary: a first use that links, and uses after it, pass" '^glossary\tplanted-glossary-ok\.md'
    expect none "(k) glossary: from a page in a directory, ../glossary.md#term passes" '^glossary\tsub/planted-glossary-ok\.md'
    expect found "(k) glossary: a use inside a link to elsewhere is no use; the next one fails" \
        '^glossary\tplanted-glossary-elsewhere\.md:3\tfrobnicators\t'
    expect found "(l) commands: an sh block typed by hand fails" '^command\tplanted-commands\.md:3\t```sh$'
    expect found "(l) commands: a marked block is listed with its reason" '^notrun\tplanted-commands\.md:8\ta planted reason$'
    expect none "(l) commands: a snapshot include passes" '^(command|notrun)\tplanted-commands\.md:12\t'
    expect found "(l) commands: a marker not on the line just before the fence does not count" '^command\tplanted-commands\.md:18\t```sh$'

    # (m): pointers into a copy of the book with a heading planted in chapter 3.
    printf '\n## Planted heading\n\nWords.\n' >>"$planted/step3.md"
    cat >"$repo/tests/workshop/planted.rs" <<'RUST'
    read: "chapter 3, Planted heading (book/src/step3.md#planted-heading)",
    read: "chapter 2, Planted heading (book/src/step3.md#planted-heading)",
    read: "chapter 3, Planted heading (book/src/step3.md#no-such-heading)",
    read: "chapter 3, Planted heading",
    read: "chapter 3, Another name (book/src/step3.md#planted-heading)",
    todo: "do it (chapter 3, Planted heading (book/src/step3.md#planted-heading))",
    todo: "do it, as it says \
           (chapter 3, Planted heading: book/src/nowhere.md#planted-heading)",
RUST
    if ! "$mdbook" build "$repo/book" --dest-dir "$tmp/planted-html" >"$tmp/planted-build.log" 2>&1; then
        fail self-test "(m) the copy of the book does not build:"
        sed 's/^/    /' "$tmp/planted-build.log" >&2
        return
    fi
    out=$("$book/tools/rules.pl" pointers "$repo" "$planted" "$tmp/planted-html" "$repo/tests/workshop/planted.rs" | cut -f1-2,4 |
        sed "s|$repo/||")
    expect none "(m) pointers: a link to a heading of its chapter passes" '^pointer\ttests/workshop/planted\.rs:1\t'
    expect found "(m) pointers: ... and is counted as a link" '^link\ttests/workshop/planted\.rs:1\tbook/src/step3\.md#planted-heading$'
    expect found "(m) pointers: a link to another chapter's page fails" '^pointer\ttests/workshop/planted\.rs:2\t.*not in chapter 2'
    expect found "(m) pointers: a link to an id that is no heading fails" '^pointer\ttests/workshop/planted\.rs:3\t.*no heading with id "no-such-heading"'
    expect found "(m) pointers: a pointer that is no link fails" '^pointer\ttests/workshop/planted\.rs:4\tno link'
    expect found "(m) pointers: a pointer that does not name its heading fails" '^pointer\ttests/workshop/planted\.rs:5\t.*does not name its heading'
    expect found "(m) pointers: a todo's \"(chapter N, … (link))\" is read" '^link\ttests/workshop/planted\.rs:6\t'
    expect found "(m) pointers: a link to a page that is not there fails, over a line break" '^pointer\ttests/workshop/planted\.rs:7\t.*no such page'

    # (n): a piece's code pasted into a page, where the preprocessor sees no include to fold.
    printf '\n```rust\nfn start_child() -> Result<Pid> {\n    todo!()\n}\n```\n' >>"$planted/step1.md"
    if ! MDBOOK=$mdbook "$repo/book/tools/edition.sh" build --workshop "$tmp/planted-workshop" >"$tmp/planted-build.log" 2>&1; then
        fail self-test "(n) the copy of the workshop edition does not build:"
        sed 's/^/    /' "$tmp/planted-build.log" >&2
        return
    fi
    out=$("$book/tools/rules.pl" folded "$repo" "$planted" "$tmp/planted-workshop")
    expect found "(n) workshop: a piece in a block it does not fold fails" '^unfolded\tstep1\.md\t1\.1\tstart_child$'
    expect found "(n) workshop: the same piece, in its own block, is folded" '^folded\t1\.1\tstart_child\t1$'
    out=$("$book/tools/rules.pl" folded "$repo" "$planted" "$tmp/planted-html")
    expect found "(n) workshop: the readers' edition folds nothing" '^missing\t1\.2\tchild\t0$'
}

case ${1:-} in
    --self-test)
        self_test
        if ((failures > 0)); then
            printf 'check: self-test: %d failed\n' "$failures" >&2
            exit 1
        fi
        echo "check: self-test: each rule fails on its planted violation"
        exit 0
        ;;
    --table)
        "$book/tools/rules.pl" table "$src"
        exit
        ;;
    '') ;;
    *)
        echo "usage: book/tools/check.sh [--self-test | --table]" >&2
        exit 2
        ;;
esac

# Markdown sources, relative to the repository root, in a stable order.
mapfile -t chapters < <(cd "$root" && find book/src -name '*.md' -type f | sort)

# ---------------------------------------------------------------------------
# (a) The committed diffs are the ones the steps give now.
# ---------------------------------------------------------------------------
if ! "$book/tools/diffs.sh" "$tmp/diffs"; then
    fail diffs "book/tools/diffs.sh failed"
else
    mkdir -p "$tmp/committed"
    cp "$src"/diffs/step*.diff "$tmp/committed/" 2>/dev/null
    if stale=$(diff -r -u "$tmp/committed" "$tmp/diffs"); then
        pass diffs "book/src/diffs/ matches steps/"
    else
        fail diffs "book/src/diffs/ is out of date with steps/: run \`just diffs\` and commit the result"
        printf '%s\n' "$stale" | sed -e "s|$tmp/committed|book/src/diffs (committed)|" \
            -e "s|$tmp/diffs|book/src/diffs (from steps/)|" | head -40 >&2
    fi
fi

# ---------------------------------------------------------------------------
# (b) Includes resolve to something. Static: mdBook cannot be asked.
# ---------------------------------------------------------------------------
# The first line of a snapshot's body: the line after its second `---`.
snap_body_start() {
    awk 'NR == 1 && $0 != "---" { exit } NR > 1 && $0 == "---" { print NR + 1; exit }' "$1"
}
# Whether lines FROM..TO (1-based, TO empty for "to the end") hold any non-blank text.
lines_have_text() {
    awk -v from="$2" -v to="$3" 'NR >= from && (to == "" || NR <= to) && /[^[:space:]]/ { found = 1 } END { exit !found }' "$1"
}
include_count=0
include_failures=$failures
for md in "${chapters[@]}"; do
    dir=$(dirname "$root/$md")
    # mdBook's own pattern: {{ #include path[:spec] }}; a leading backslash escapes it.
    while IFS=: read -r lineno directive; do
        [[ $directive == \\* ]] && continue
        kind=$(sed -E 's/^\{\{[[:space:]]*#([a-z_]+).*/\1/' <<<"$directive")
        [[ $kind == include || $kind == rustdoc_include ]] || continue
        include_count=$((include_count + 1))
        arg=$(sed -E 's/^\{\{[[:space:]]*#[a-z_]+[[:space:]]+([^[:space:]}]+).*/\1/' <<<"$directive")
        path=${arg%%:*}
        spec=""
        [[ $arg == *:* ]] && spec=${arg#*:}
        where="$md:$lineno: $directive"
        file=$dir/$path
        if [[ ! -f $file ]]; then
            fail includes "$where: no such file ($(realpath -m --relative-to="$root" "$file"))"
            continue
        fi
        from=1 to="" by_anchor=false
        if [[ -z $spec ]]; then
            :
        elif [[ $spec =~ ^([0-9]*)(:([0-9]*))?$ ]]; then
            # mdBook: N is line N alone, N: runs to the end, N:M is N to M, :M is 1 to M.
            [[ -n ${BASH_REMATCH[1]} ]] && from=${BASH_REMATCH[1]}
            if [[ -z ${BASH_REMATCH[2]} ]]; then to=$from; else to=${BASH_REMATCH[3]}; fi
        else
            anchor=${spec%%:*} by_anchor=true
            # mdBook's anchors: a line holding `ANCHOR: name`, a line holding `ANCHOR_END: name`.
            from=$(grep -n -E "ANCHOR:[[:space:]]*$anchor([^[:alnum:]_-]|\$)" "$file" | head -1 | cut -d: -f1)
            if [[ -z $from ]]; then
                fail includes "$where: no \`ANCHOR: $anchor\` in $(realpath --relative-to="$root" "$file") (mdBook would include nothing)"
                continue
            fi
            to=$(awk -v from="$from" -v re="ANCHOR_END:[[:space:]]*$anchor([^[:alnum:]_-]|\$)" 'NR > from && $0 ~ re { print NR; exit }' "$file")
            if [[ -z $to ]]; then
                fail includes "$where: no \`ANCHOR_END: $anchor\` after its ANCHOR in $(realpath --relative-to="$root" "$file") (mdBook would include the rest of the file)"
                continue
            fi
            from=$((from + 1)) to=$((to - 1))
        fi
        # What was included, for (c): the file, relative to the repository, and the lines.
        printf '%s\t%s\t%s\n' "$(realpath -m --relative-to="$root" "$file")" "$from" "$to" >>"$tmp/included"
        if ! lines_have_text "$file" "$from" "$to"; then
            fail includes "$where: includes nothing (empty file, empty region, or lines past the end)"
            continue
        fi
        # mdBook drops the ANCHOR lines inside an anchored region, but shows them in
        # a whole file or a line range: the reader would see `// ANCHOR: x` comments.
        # (Not in a step's diff: there they are part of what changed.)
        if ! $by_anchor && [[ $file != "$src"/diffs/* ]] &&
            awk -v from="$from" -v to="$to" 'NR >= from && (to == "" || NR <= to) && /ANCHOR(_END)?:/ { found = 1 } END { exit !found }' "$file"; then
            fail includes "$where: would show ANCHOR comment lines: include a region by its anchor instead"
            continue
        fi
        # A snapshot is included from the first line of its body to its end, and
        # nothing else: then the book shows exactly what the test checks.
        if [[ $file == *.snap ]]; then
            body=$(snap_body_start "$file")
            if [[ -z $body ]]; then
                fail includes "$where: $(basename "$file") has no '---' ... '---' header: is it an insta snapshot?"
            elif [[ $spec != "$body:" ]]; then
                fail includes "$where: this snapshot's body starts at line $body: include it as {{#include $path:$body:}}"
            fi
        fi
    done < <(grep -n -o -E '\\?\{\{[[:space:]]*#[a-zA-Z0-9_]+[[:space:]]+[^}]+\}\}' "$root/$md")
done
((failures == include_failures)) && pass includes "$include_count includes, each resolves to text"

# ---------------------------------------------------------------------------
# (c) The files that a chapter quotes whole are quoted whole: every line of
#     them, but blank and ANCHOR lines, is in a region that some chapter
#     includes. A line added outside every anchor would be code the reader
#     never sees.
# ---------------------------------------------------------------------------
whole=(steps/step2/rootless.rs steps/step4/init.rs steps/step4/filesystems.rs steps/step4/privileges.rs steps/step4/seccomp.rs steps/step4/stdio.rs
    steps/step5/cgroup.rs steps/step5/limits.rs)
whole_failures=$failures
touch "$tmp/included"
for file in "${whole[@]}"; do
    unseen=$(awk -F'\t' -v file="$file" '
        FNR == NR { if ($1 == file) { from[++n] = $2; to[n] = ($3 == "" ? 1e9 : $3) }; next }
        /^[[:space:]]*$/ || /ANCHOR(_END)?:/ { next }
        { for (i = 1; i <= n; i++) if (FNR >= from[i] && FNR <= to[i]) next; print FNR ": " $0 }
    ' "$tmp/included" "$root/$file")
    if [[ -n $unseen ]]; then
        fail whole "$file is quoted whole, but no chapter includes these lines of it:"
        printf '%s\n' "$unseen" | head -10 | sed 's/^/    /' >&2
    fi
done
((failures == whole_failures)) && pass whole "${#whole[@]} files quoted whole, every line of each"

# ---------------------------------------------------------------------------
# (d) The chart of "What each step costs" is the committed results', drawn.
# ---------------------------------------------------------------------------
if "$book/tools/chart.sh" "$src/costs/results.csv" >"$tmp/chart.svg" &&
    cmp -s "$tmp/chart.svg" "$src/costs/results.svg"; then
    pass chart "book/src/costs/results.svg is drawn from results.csv"
else
    fail chart "book/src/costs/results.svg is not what book/tools/chart.sh draws from results.csv: run \`just bench\`, or book/tools/chart.sh"
fi

# ---------------------------------------------------------------------------
# (e) Every manual page a chapter names, such as `pivot_root(2)`, is a link to
#     it on man7.org: a reader should never have to search for one.
# ---------------------------------------------------------------------------
man_failures=$failures
for md in "${chapters[@]}"; do
    # Leave out code blocks, includes and links; what is left names no page.
    while IFS= read -r page; do
        fail man "$md names $page without a link: write [$page](https://man7.org/linux/man-pages/man${page: -2:1}/${page%(*}.${page: -2:1}.html)"
    done < <(perl -0777 -ne 's/```.*?```//gs; s/\{\{#include[^}]*\}\}//g; s/\[[^\]]*\]\([^)]*\)//g;
        print "$1\n" while /\b([a-z_][a-z0-9_.+-]*\([1-8]\))/g' "$root/$md")
done
((failures == man_failures)) && pass man "every manual page named is a link"

# ---------------------------------------------------------------------------
# (i) to (l): page size, runs of prose, glossary links, commands tested.
# ---------------------------------------------------------------------------
if ! "$book/tools/rules.pl" pages "$src" >"$tmp/pages"; then
    fail size "book/tools/rules.pl failed: (i) to (l) not checked"
fi
# Each finding is a line: KIND, then tab-separated fields (rules.pl's header).
findings() { awk -F'\t' -v kind="$1" '$1 == kind { sub(/^[^\t]*\t/, ""); print }' "$tmp/pages"; }
size_failures=$failures
while IFS=$'\t' read -r page words; do
    fail size "book/src/$page has $words words of prose, over 3,500: split it into pages (mdBook's nested chapters)"
done < <(findings size)
((failures == size_failures)) && pass size "every page has at most 3,500 words of prose (glossary and cheat sheet aside)"
runs_failures=$failures
while IFS=$'\t' read -r where words; do
    fail runs "book/src/$where: $words words of prose, with no code block, transcript, figure, list or table between"
done < <(findings run)
((failures == runs_failures)) && pass runs "no run of prose over 250 words"
glossary_failures=$failures
while IFS=$'\t' read -r where term href; do
    fail glossary "book/src/$where: the first use of \"$term\" on the page does not link to the glossary: [$term]($href)"
done < <(findings glossary)
((failures == glossary_failures)) && pass glossary "the first use of each glossary term on a page links to it"
command_failures=$failures
while IFS=$'\t' read -r where fence; do
    fail commands "book/src/$where: a $fence block that no test runs: include its tests/snapshots/*.snap, or say why not on the line before: <!-- not run: REASON -->"
done < <(findings command)
not_run=0
while IFS=$'\t' read -r where reason; do
    printf 'check: not run    book/src/%s: %s\n' "$where" "$reason"
    not_run=$((not_run + 1))
done < <(findings notrun)
((failures == command_failures)) && pass commands "every sh and console block is a snapshot, or says why not ($not_run not run, listed above)"

# ---------------------------------------------------------------------------
# (f) mdbook build, and nothing but INFO in its output.
# ---------------------------------------------------------------------------
mdbook=${MDBOOK:-$(command -v mdbook || echo "$HOME/.cargo/bin/mdbook")}
built=false
if ! version=$("$mdbook" --version 2>/dev/null); then
    fail build "mdbook not found: cargo install --locked mdbook@$pinned"
elif [[ $version != "mdbook v$pinned" ]]; then
    fail build "$mdbook is \"$version\", the book is checked with v$pinned: cargo install --locked mdbook@$pinned"
else
    # MDBOOK_* variables override book.toml (and MDBOOK_LOG could hide warnings):
    # check the book as book.toml says it is.
    mapfile -t unset_vars < <(env | sed -n 's/^\(MDBOOK_[A-Za-z0-9_]*\)=.*/-u\n\1/p')
    env "${unset_vars[@]}" "$mdbook" build "$book" --dest-dir "$tmp/html" >"$tmp/build.log" 2>&1
    status=$?
    # tracing's format: " INFO message", " WARN message", "ERROR message".
    noise=$(grep -v -E '^ INFO ' "$tmp/build.log")
    if ((status != 0)); then
        fail build "mdbook build exited with status $status:"
        sed 's/^/    /' "$tmp/build.log" >&2
    elif [[ -n $noise ]]; then
        fail build "mdbook build printed warnings or errors (it exits 0 even on a missing include):"
        printf '%s\n' "$noise" | sed 's/^/    /' >&2
    else
        pass build "mdbook $pinned built the book with no warning"
    fi
    [[ -f $tmp/html/index.html ]] && built=true
fi

# &lt; and friends back to text (pulldown-cmark escapes these four, and ' as &#39;).
unescape() { sed -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&quot;/"/g' -e "s/&#39;/'/g" -e 's/&amp;/\&/g'; }

if $built; then
    html=$tmp/html
    # -----------------------------------------------------------------------
    # (g) Links and images in the built HTML.
    # -----------------------------------------------------------------------
    link_failures=$failures
    link_count=0
    # 404.html is written with <base href="/">: its links resolve from the site root, not from it.
    while IFS= read -r page; do
        rel=${page#"$html"/}
        while IFS= read -r target; do
            target=$(unescape <<<"$target")
            case $target in
                '' | http:* | https:* | mailto:* | javascript:* | data:* | //*) continue ;;
            esac
            link_count=$((link_count + 1))
            path=${target%%#*}
            fragment=""
            [[ $target == *#* ]] && fragment=${target#*#}
            path=${path%%\?*}
            path=${path//%20/ }
            if [[ -z $path ]]; then
                dest=$page
            else
                dest=$(realpath -m "$(dirname "$page")/$path")
                [[ -d $dest ]] && dest=$dest/index.html
            fi
            if [[ ! -f $dest ]]; then
                fail links "$rel links to $target: no such file in the built book"
            elif [[ -n $fragment ]] && ! grep -q -F -e "id=\"$fragment\"" -e "name=\"$fragment\"" "$dest"; then
                fail links "$rel links to $target: no id=\"$fragment\" in ${dest#"$html"/}"
            fi
        done < <(grep -o -E '(href|src)="[^"]*"' "$page" | sed -E 's/^(href|src)="(.*)"$/\2/' | sort -u)
    done < <(find "$html" -name '*.html' ! -path "$html/404.html" | sort)
    ((failures == link_failures)) && pass links "$link_count links and images resolve"

    # -----------------------------------------------------------------------
    # (h) Commands in "Run it" sections are the commands the snapshots run.
    # -----------------------------------------------------------------------
    : >"$tmp/commands"
    shopt -s nullglob
    for snap in "$root"/tests/snapshots/*.snap; do
        body=$(snap_body_start "$snap")
        [[ -n $body ]] && sed -n "${body}p" "$snap" | grep -E '^\$ ' >>"$tmp/commands"
    done
    shopt -u nullglob
    sort -u -o "$tmp/commands" "$tmp/commands"
    run_failures=$failures
    run_count=0
    # Each chapter page (print.html repeats them all): the text of <pre> blocks and
    # of inline <code> between a heading starting "Run it" and the next <h1>-<h3>.
    while IFS= read -r page; do
        rel=${page#"$html"/}
        while IFS=$'\t' read -r lineno text; do
            run_count=$((run_count + 1))
            if ! grep -q -x -F -e "$text" "$tmp/commands"; then
                fail run-it "$rel:$lineno: \`$text\` is in a Run-it section, but no tests/snapshots/*.snap begins with it: include the snapshot instead of typing the command"
            fi
        done < <(awk '
            function text(s) { gsub(/<[^>]*>/, "", s); return s }
            /<h[123][ >]/ {
                heading = text($0); gsub(/^[[:space:]]+|[[:space:]]+$/, "", heading)
                inrun = tolower(heading) ~ /^run it/; inpre = 0; next
            }
            /<\/main>/ { inrun = 0 }
            !inrun { next }
            /<pre[ >]/ { inpre = 1 }
            inpre { print FNR "\t" text($0) }
            !inpre {
                s = $0
                while (match(s, /<code>[^<]*<\/code>/)) {
                    print FNR "\t" text(substr(s, RSTART, RLENGTH)); s = substr(s, RSTART + RLENGTH)
                }
            }
            /<\/pre>/ { inpre = 0 }
        ' "$page" | unescape | grep -E $'^[0-9]+\t\\$ ')
    done < <(find "$html" -name '*.html' ! -name print.html ! -name 404.html ! -name toc.html | sort)
    ((failures == run_failures)) && pass run-it "$run_count Run-it commands, each is the first line of a snapshot ($(wc -l <"$tmp/commands") snapshot commands)"

    # -----------------------------------------------------------------------
    # (m) The workshop's pointers into the book are links that resolve.
    # -----------------------------------------------------------------------
    pointer_failures=$failures
    link_count=0
    while IFS=$'\t' read -r kind where pointer what; do
        if [[ $kind == link ]]; then
            link_count=$((link_count + 1))
        else
            fail pointers "$where: \"$pointer\": $what"
        fi
    done < <("$book/tools/rules.pl" pointers "$root" "$src" "$html" "$root/tests/workshop/exercises.rs" "$root/tests/workshop/checks.rs")
    ((failures == pointer_failures)) && pass pointers "$link_count links from the workshop's pointers, each to a heading of its chapter"

    # -----------------------------------------------------------------------
    # (n) The workshop edition builds, and folds every piece a stage asks for.
    # -----------------------------------------------------------------------
    env "${unset_vars[@]}" "$book/tools/edition.sh" build --workshop "$tmp/workshop" >"$tmp/workshop.log" 2>&1
    status=$?
    noise=$(grep -v -E '^ INFO ' "$tmp/workshop.log")
    if ((status != 0)) || [[ -n $noise ]]; then
        fail workshop "book/tools/edition.sh build --workshop exited with status $status, or printed more than INFO:"
        sed 's/^/    /' "$tmp/workshop.log" >&2
    else
        workshop_failures=$failures
        folded=0
        while IFS=$'\t' read -r kind a b c; do
            case $kind in
                folded) folded=$((folded + 1)) ;;
                missing) fail workshop "stage $a's $b: no \"Show the reference\" box in the workshop edition shows it" ;;
                unfolded) fail workshop "book/src/$a: stage $b's $c is in a code block that the workshop edition does not fold" ;;
            esac
        done < <("$book/tools/rules.pl" folded "$root" "$src" "$tmp/workshop")
        ((failures == workshop_failures)) && pass workshop "the workshop edition folds each of the $folded pieces a learner writes behind \"Show the reference\""
    fi
else
    fail links "not checked: the book did not build"
    fail run-it "not checked: the book did not build"
    fail pointers "not checked: the book did not build"
    fail workshop "not checked: the book did not build"
fi

if ((failures > 0)); then
    printf 'check: %d failed\n' "$failures" >&2
    exit 1
fi
echo "check: the book is consistent with steps/ and tests/snapshots/"
