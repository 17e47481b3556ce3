#!/usr/bin/env bash
# book/tools/chart.sh RESULTS.csv > CHART.svg
#
# The book's chart "What each step costs" (book/src/costs.md), drawn from the results that
# `just bench` wrote: hyperfine's CSV (command,mean,stddev,median,user,system,min,max, in
# seconds). One bar per command of `run /bin/true`, its median in milliseconds, with the mean
# beside it: on a busy machine a few slow runs pull the mean up, and the median shows the usual
# run. The 100 MB copies, fifty times longer, are left out: costs.md gives them in a table. The
# workbook's steps are blue, the other tools grey. book/tools/check.sh draws it again and
# compares, so the chart is always the committed results'.
set -euo pipefail
[ $# = 1 ] || { echo "usage: $0 RESULTS.csv" >&2; exit 2; }
awk -F, '
NR == 1 || $1 ~ /100 MB/ { next }
{ name[++n] = $1; mean[n] = $2 * 1000; median[n] = $4 * 1000; if (median[n] > top) top = median[n] }
END {
    left = 190; width = 420; row = 30; height = 40 + n * row
    scale = width / top
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"14\">\n", left + width + 150, height
    printf "<text x=\"10\" y=\"20\" font-weight=\"bold\">run /bin/true: median time, ms (mean in brackets)</text>\n"
    for (i = 1; i <= n; i++) {
        y = 30 + (i - 1) * row
        colour = (name[i] ~ /^step/) ? "#4a7fb5" : "#999999"
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 10, y + 19, name[i]
        printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y + 5, median[i] * scale, row - 10, colour
        printf "<text x=\"%.1f\" y=\"%d\">%.1f <tspan fill=\"#777777\">(%.1f)</tspan></text>\n", left + median[i] * scale + 6, y + 19, median[i], mean[i]
    }
    print "</svg>"
}' "$1"
