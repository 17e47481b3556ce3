#!/usr/bin/env bash
# book/tools/chart.sh RESULTS.csv > CHART.svg
#
# The book's chart "What each step costs" (book/src/costs.md), drawn from the results that
# `just bench` wrote: hyperfine's CSV (command,mean,stddev,median,user,system,min,max, in
# seconds), one bar per command, its mean in milliseconds, and its standard deviation as a
# whisker. The workbook's steps are blue, the other tools grey. book/tools/check.sh draws it
# again and compares, so the chart is always the committed results'.
set -euo pipefail
[ $# = 1 ] || { echo "usage: $0 RESULTS.csv" >&2; exit 2; }
awk -F, '
NR == 1 { next }
{ name[++n] = $1; mean[n] = $2 * 1000; sd[n] = $3 * 1000; if (mean[n] + sd[n] > top) top = mean[n] + sd[n] }
END {
    left = 230; width = 440; row = 30; height = 40 + n * row
    scale = width / top
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"14\">\n", left + width + 120, height
    printf "<text x=\"%d\" y=\"20\" font-weight=\"bold\">run /bin/true: mean time in ms (whisker: one standard deviation)</text>\n", 10
    for (i = 1; i <= n; i++) {
        y = 30 + (i - 1) * row
        colour = (name[i] ~ /^step/) ? "#4a7fb5" : "#999999"
        label = name[i]; gsub(/&/, "\\&amp;", label); gsub(/</, "\\&lt;", label)
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 10, y + 19, label
        printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left, y + 5, mean[i] * scale, row - 10, colour
        x1 = left + (mean[i] - sd[i] < 0 ? 0 : mean[i] - sd[i]) * scale; x2 = left + (mean[i] + sd[i]) * scale
        printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\"/>\n", x1, y + 15, x2, y + 15
        printf "<text x=\"%.1f\" y=\"%d\">%.1f</text>\n", x2 + 6, y + 19, mean[i]
    }
    print "</svg>"
}' "$1"
