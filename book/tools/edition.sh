#!/usr/bin/env bash
# Builds or serves an edition of the book: the readers' (book.toml as it is), or with
# --workshop the workshop edition, where book/tools/workshop.pl folds each stage's reference
# code behind "Show the reference" (its header says which blocks), into book/build-workshop/.
#
#   book/tools/edition.sh serve [--workshop]        what `just book [--workshop]` runs
#   book/tools/edition.sh build [--workshop] DIR    build into DIR (what check.sh does)
#
# MDBOOK=/path/to/mdbook overrides which mdbook runs.
set -euo pipefail

book=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mdbook=${MDBOOK:-$(command -v mdbook || echo "$HOME/.cargo/bin/mdbook")}
usage="usage: book/tools/edition.sh serve [--workshop] | build [--workshop] DIR"

what=${1:-}
shift || true
workshop=false
if [[ ${1:-} == --workshop ]]; then
    workshop=true
    shift
fi
case $what/$# in
    serve/0) ;;
    build/1) dest=$1 ;;
    *)
        echo "$usage" >&2
        exit 2
        ;;
esac

if $workshop; then
    # mdBook reads MDBOOK_* variables as book.toml settings: the preprocessor, run from the
    # book's directory before mdBook's own `links` expands the includes, and a title that
    # says which edition this is.
    export MDBOOK_PREPROCESSOR__WORKSHOP='{"command": "perl tools/workshop.pl", "before": ["links"]}'
    export MDBOOK_BOOK__TITLE="Build Your Own Container in Rust (workshop edition)"
    export MDBOOK_OUTPUT__HTML__ADDITIONAL_CSS='["tools/workshop.css"]'
fi

if [[ $what == serve ]]; then
    if $workshop; then
        exec "$mdbook" serve "$book" --open --dest-dir "$book/build-workshop"
    fi
    exec "$mdbook" serve "$book" --open
fi
exec "$mdbook" build "$book" --dest-dir "$dest"
