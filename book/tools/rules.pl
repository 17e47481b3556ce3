#!/usr/bin/env perl
# The rules of check.sh that read the chapters' Markdown and the workshop's pointers into
# them (check.sh says what each is for). One line per finding, tab-separated, on stdout:
#
#   book/tools/rules.pl pages SRC
#       size     FILE  WORDS                   a page over 3,500 words of prose       (i)
#       run      FILE:FROM-TO  WORDS           a run over 250 words of prose           (j)
#       glossary FILE:LINE  TERM  ANCHOR       a term's first use, not linked          (k)
#       command  FILE:LINE  FENCE              an sh/console block neither a snapshot
#                                              nor marked `<!-- not run: REASON -->`   (l)
#       notrun   FILE:LINE  REASON             a block marked not run, and why         (l)
#       stats    FILE  LINES WORDS BLOCKS LONGEST_RUN   every page, for the table
#   book/tools/rules.pl table SRC             the stats lines, as a Markdown table
#   book/tools/rules.pl pointers ROOT SRC HTML FILE...
#       pointer  FILE:LINE  POINTER  WHAT      a pointer that is no link, or a broken one (m)
#       link     FILE:LINE  POINTER  TARGET    a pointer's link that resolves
#   book/tools/rules.pl folded ROOT SRC HTML  (HTML: the workshop edition, built)
#       folded   STAGE  FUNCTION  COUNT        a piece behind "Show the reference"     (n)
#       missing  STAGE  FUNCTION  0            a piece no reference box shows          (n)
#       unfolded PAGE  STAGE  FUNCTION         a piece shown in a code block, unfolded (n)
#
# FILE is relative to SRC. What counts (check.sh's header says it in words):
#
# - Prose: the words of a page outside fenced code blocks, {{#include}} lines, HTML comments
#   and tags, link targets and images' alt text. A word is a run of non-space characters
#   with a letter or digit in it.
# - A run of prose: the prose words between two breaks, where a break is a fenced code
#   block (a transcript is one), an image, a list, a table, or the edge of a folded box
#   (a `<details>` line: what is folded is not read with what is around it). Headings and
#   quoted boxes do not break a run.
# - A glossary term: each `## Heading` of glossary.md, as written, and each part of one
#   written "A, B and C" (`## Clone, fork and exec`: clone, fork, exec). A page uses a term
#   where its prose has it as a whole word (case aside, plural -s, -es or -y/-ies allowed,
#   the longest term first: "mount namespace" is not a use of "mount"), or where a code span
#   is the term itself (`pivot_root`, not `pivot_root(".", ".")`). Headings, images and the
#   text of links to elsewhere (a manual page, another chapter) are not uses. The first use
#   on a page must be in a link to glossary.md#ANCHOR, or come after one.
# - A snapshot block: an sh or console block whose every non-blank line is an {{#include}}
#   of a tests/snapshots/*.snap file.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;

my $PAGE_WORDS = 3500;
my $RUN_WORDS  = 250;
# Reference pages, read entry by entry rather than top to bottom: no page or run size. The
# glossary's own terms need no link: it is the target.
my %EXEMPT = map { $_ => 1 } qw(glossary.md cheatsheet.md);
my %SHELL  = map { $_ => 1 } qw(sh console bash shell);

sub slurp {
    my ($path) = @_;
    open my $fh, '<:encoding(UTF-8)', $path or die "rules.pl: cannot read $path: $!\n";
    local $/;
    my $text = <$fh>;
    return $text;
}

sub finding { print join("\t", @_), "\n" }

# mdBook's heading ids: lower case, whitespace as '-', only letters, digits, '_' and '-' kept.
sub heading_id {
    my ($text) = @_;
    $text = lc $text;
    $text =~ s/\s/-/g;
    $text =~ s/[^\p{Alnum}_-]//g;
    return $text;
}

sub words_in {
    my ($text) = @_;
    return scalar grep { /[\p{L}\p{N}]/ } split ' ', $text;
}

# Blank out (with spaces, newlines kept) every match of $re in $text: positions stay.
sub blank {
    my ($text, $re) = @_;
    $text =~ s/$re/my $m = $&; $m =~ s|[^\n]| |g; $m/ge;
    return $text;
}

# A page's lines, each with its kind: code (a fence or inside one), include, heading, list,
# table, image, blank or text. Kinds are what the rules need, not a Markdown parser.
sub classify {
    my ($text) = @_;
    my @lines = split /\n/, $text, -1;
    pop @lines if @lines && $lines[-1] eq '';
    my @kind;
    # Images first: `![alt](src)`, whose alt text may run over several lines.
    my %image;
    while ($text =~ /!\[[^\]]*\]\([^)]*\)/g) {
        my ($from, $to) = ($-[0], $+[0]);
        my $first = (substr($text, 0, $from) =~ tr/\n//);
        my $last  = (substr($text, 0, $to) =~ tr/\n//);
        $image{$_} = 1 for $first .. $last;
    }
    my ($fence, $in_list) = ('', 0);
    for my $i (0 .. $#lines) {
        my $line = $lines[$i];
        if ($fence ne '') {
            $kind[$i] = 'code';
            $fence = '' if $line =~ /^\s*\Q$fence\E[`~]*\s*$/;
            next;
        }
        if ($line =~ /^\s*(```+|~~~+)/) {
            $fence = $1;
            $kind[$i] = 'code';
            next;
        }
        if ($line =~ /^\s*$/) { $kind[$i] = 'blank'; next }
        if ($line =~ /^\s*\{\{\s*#(include|rustdoc_include)\b/) { $kind[$i] = 'include'; $in_list = 0; next }
        if ($image{$i}) { $kind[$i] = 'image'; $in_list = 0; next }
        if ($line =~ /^#{1,6}\s/) { $kind[$i] = 'heading'; $in_list = 0; next }
        if ($line =~ /^\s*<\/?details\b/) { $kind[$i] = 'fold'; $in_list = 0; next }
        if ($line =~ /^\s*\|/) { $kind[$i] = 'table'; $in_list = 0; next }
        if ($line =~ /^\s*([-*+]|\d+[.)])\s+\S/) { $kind[$i] = 'list'; $in_list = 1; next }
        # A list item goes on in the lines after it: indented, or straight after (lazily).
        if ($in_list && ($line =~ /^\s+\S/ || ($i > 0 && $kind[$i - 1] eq 'list'))) {
            $kind[$i] = 'list';
            next;
        }
        $in_list = 0;
        $kind[$i] = 'text';
    }
    return (\@lines, \@kind);
}

# The prose of one line: no comments, tags, link targets.
sub prose_of {
    my ($line) = @_;
    $line =~ s/<[^>]*>//g;
    $line =~ s/\]\([^)]*\)/]/g;
    return $line;
}

# ---------------------------------------------------------------------------
# pages SRC
# ---------------------------------------------------------------------------
sub glossary_terms {
    my ($src) = @_;
    my @terms;
    for my $line (split /\n/, slurp("$src/glossary.md")) {
        next unless $line =~ /^##\s+(.+?)\s*$/;
        my $heading = $1;
        my $anchor  = heading_id($heading);
        my @names   = ($heading);
        if ($heading =~ /^(.+), (.+) and (.+)$/) {
            @names = ($1, $2, $3);
        }
        push @terms, map { { name => $_, anchor => $anchor } } @names;
    }
    return @terms;
}

# A regex for a term: whole word, case aside, plurals.
sub term_re {
    my ($name) = @_;
    my $re = quotemeta $name;
    $re =~ s/\\ /\\s+/g;
    if ($name =~ /[^aeiou]y$/i) {
        $re =~ s/y$/(?:y|ies)/i;
    } elsif ($name =~ /\w$/) {
        $re .= '(?:s|es)?';
    }
    return "(?<![\\w/.-])$re(?![\\w/]|\\.\\w)";
}

sub check_glossary {
    my ($rel, $lines, $kind, $terms, $glossary_href) = @_;
    # What can hold a use: text, list and table lines, without comments.
    my @keep = map { $kind->[$_] =~ /^(text|list|table)$/ ? $lines->[$_] : '' } 0 .. $#$lines;
    my $prose = join "\n", @keep;
    $prose = blank($prose, qr/<!--.*?-->/s);
    # Links: where their text is, and where they lead.
    my @links;
    while ($prose =~ /\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]*)[^)]*\)/g) {
        push @links, { from => $-[1], to => $+[1], target => $2, start => $-[0] };
    }
    # Code spans: kept where the span is a term, blanked otherwise.
    my $alternatives = join '|', map { term_re($_->{name}) } sort { length $b->{name} <=> length $a->{name} } @$terms;
    my $is_term = qr/^(?:$alternatives)$/i;
    $prose =~ s{(`+)([^`\n]+?)\1}{
        my ($ticks, $code) = ($1, $2);
        my $inner = $code; $inner =~ s/^\s+|\s+$//g;
        $inner =~ $is_term ? (' ' x length $ticks) . $code . (' ' x length $ticks)
                           : ' ' x (2 * length($ticks) + length $code)
    }ge;
    # Link targets and HTML tags are no prose either.
    $prose = blank($prose, qr/\]\([^)]*\)/);
    $prose = blank($prose, qr/<[^>\n]*>/);
    my @ordered = map { [$_, qr/^${\ term_re($_->{name})}$/i] } sort { length $b->{name} <=> length $a->{name} } @$terms;
    my %seen;
    while ($prose =~ /($alternatives)/gi) {
        my ($at, $match) = ($-[0], $1);
        my ($term) = map { $_->[0] } grep { $match =~ $_->[1] } @ordered;
        next unless $term;
        $match =~ s/\s+/ /g;
        next if $seen{$term->{name}};
        my ($link) = grep { $_->{from} <= $at && $at < $_->{to} } @links;
        my $to_entry = sub { $_[0] eq "$glossary_href#$term->{anchor}" };
        if ($link && !$to_entry->($link->{target})) {
            next;    # in a link to elsewhere: not a use
        }
        $seen{$term->{name}} = 1;
        next if $link;    # linked where first used
        next if grep { $_->{start} < $at && $to_entry->($_->{target}) } @links;
        my $line = 1 + (substr($prose, 0, $at) =~ tr/\n//);
        finding('glossary', "$rel:$line", $match, "$glossary_href#$term->{anchor}");
    }
}

sub pages {
    my ($src) = @_;
    my @terms = glossary_terms($src);
    my @files;
    require File::Find;
    File::Find::find({ no_chdir => 1, wanted => sub { push @files, $_ if /\.md$/ && -f $_ } }, $src);
    for my $path (sort @files) {
        my $rel = File::Spec->abs2rel($path, $src);
        next if $rel eq 'SUMMARY.md';
        my $text = slurp($path);
        my ($lines, $kind) = classify($text);
        my $glossary_href = File::Spec->abs2rel("$src/glossary.md", dirname($path));

        # Page size and prose runs.
        my ($words, $run, $run_from, $longest, $blocks, $in_comment) = (0, 0, undef, 0, 0, 0);
        my $end_run = sub {
            my ($last) = @_;
            if ($run > $RUN_WORDS && !$EXEMPT{$rel}) {
                finding('run', "$rel:" . ($run_from + 1) . '-' . ($last + 1), $run);
            }
            $longest = $run if $run > $longest;
            ($run, $run_from) = (0, undef);
        };
        for my $i (0 .. $#$lines) {
            my $k    = $kind->[$i];
            my $line = $lines->[$i];
            if ($k eq 'code' || $k eq 'image' || $k eq 'list' || $k eq 'table' || $k eq 'fold') {
                $blocks++ if $k eq 'code' && ($i == 0 || $kind->[$i - 1] ne 'code');
                $end_run->($i - 1);
                $words += words_in(prose_of($line)) if $k eq 'list' || $k eq 'table' || $k eq 'fold';
                next;
            }
            next unless $k eq 'text' || $k eq 'heading';
            # HTML comments, which may span lines.
            my $visible = '';
            while (length $line) {
                if ($in_comment) {
                    if ($line =~ s/^.*?-->//) { $in_comment = 0 } else { $line = '' }
                } elsif ($line =~ s/^(.*?)<!--//) {
                    $visible .= $1;
                    $in_comment = 1;
                } else {
                    $visible .= $line;
                    $line = '';
                }
            }
            my $n = words_in(prose_of($visible));
            next unless $n;
            $words += $n;
            $run_from //= $i;
            $run += $n;
        }
        $end_run->($#$lines);
        finding('size', $rel, $words) if $words > $PAGE_WORDS && !$EXEMPT{$rel};
        finding('stats', $rel, scalar(@$lines), $words, $blocks, $longest);

        # Commands: every sh/console block is a snapshot, or marked as not run.
        for my $i (0 .. $#$lines) {
            next unless $kind->[$i] eq 'code' && ($i == 0 || $kind->[$i - 1] ne 'code');
            next unless $lines->[$i] =~ /^\s*(?:```+|~~~+)\s*([\w-]+)/ && $SHELL{$1};
            my $info = $1;
            my @body;
            for (my $j = $i + 1; $j <= $#$lines && $kind->[$j] eq 'code'; $j++) {
                last if $lines->[$j] =~ /^\s*(```+|~~~+)\s*$/;
                push @body, $lines->[$j];
            }
            my @text = grep { /\S/ } @body;
            next if @text && !grep { !/^\s*\{\{\s*#include\s+\S*tests\/snapshots\/[^}\s]+\.snap[^}]*\}\}\s*$/ } @text;
            if ($i > 0 && $lines->[$i - 1] =~ /^\s*<!--\s*not run:\s*(.*?)\s*-->\s*$/ && $1 ne '') {
                finding('notrun', "$rel:" . ($i + 1), $1);
            } else {
                finding('command', "$rel:" . ($i + 1), "```$info");
            }
        }

        # Glossary links.
        check_glossary($rel, $lines, $kind, \@terms, $glossary_href) unless $rel eq 'glossary.md';
    }
}

# ---------------------------------------------------------------------------
# pointers ROOT SRC HTML FILE...
# ---------------------------------------------------------------------------
# SUMMARY.md's numbered chapters: page (relative to SRC) => the chapter's number, its first
# part (a sub-chapter 4.2 is in chapter 4).
sub chapter_numbers {
    my ($src) = @_;
    my (%number, $n);
    for my $line (split /\n/, slurp("$src/SUMMARY.md")) {
        next unless $line =~ /^(\s*)[-*]\s+\[[^\]]*\]\(([^)]*)\)/;
        my ($indent, $page) = ($1, $2);
        $n++ if $indent eq '';
        $number{$page} = $n if $page ne '';
    }
    return %number;
}

# The headings of a built page, in order: [id, text].
sub headings_of {
    my ($html) = @_;
    my @heading;
    return @heading unless -f $html;
    my $text = slurp($html);
    while ($text =~ /<h[1-6] id="([^"]+)"[^>]*>(.*?)<\/h[1-6]>/gs) {
        my ($id, $inner) = ($1, $2);
        $inner =~ s/<[^>]*>//g;
        $inner =~ s/&lt;/</g; $inner =~ s/&gt;/>/g; $inner =~ s/&quot;/"/g; $inner =~ s/&#39;/'/g; $inner =~ s/&amp;/&/g;
        # mdBook's smart punctuation curls the quotes that the sources write straight.
        $inner =~ tr/\x{2018}\x{2019}\x{201C}\x{201D}/''""/;
        push @heading, [$id, $inner];
    }
    return @heading;
}

# Which of HEADINGS a NAME from a pointer means: the heading it is, or starts ("Without
# root" is "Without root: a user namespace"); or, for "Part 2: The code", the heading "The
# code" below the heading "Part 2: …"; or that "Part 2" heading alone, if nothing below it is
# named so. Returns [id, what is missing], or nothing.
sub find_heading {
    my ($name, @headings) = @_;
    my $is = sub { my ($text) = @_; lc $text eq lc $name || index(lc $text, lc("$name:")) == 0 };
    for my $heading (@headings) {
        return [$heading->[0], ''] if $is->($heading->[1]);
    }
    return unless $name =~ /^([^:]+):\s+(.+)$/;
    my ($prefix, $rest) = ($1, $2);
    for my $i (0 .. $#headings) {
        my $text = lc $headings[$i][1];
        next unless $text eq lc $prefix || index($text, lc("$prefix:")) == 0;
        my $below = find_heading($rest, @headings[$i + 1 .. $#headings]);
        return $below if $below && $below->[1] eq '';
        return [$headings[$i][0], " (\"$rest\" is no heading below it)"];
    }
    return;
}

# Rust string literals: their text, with `\` line continuations and escapes undone.
sub rust_string {
    my ($s) = @_;
    $s =~ s/\\\n\s*//g;
    $s =~ s/\\(["\\'])/$1/g;
    $s =~ s/\\n/\n/g;
    return $s;
}

# The pointers of a file: [line, text], from `read: "…"` fields, whole, and from the
# "(chapter N, …)" of `todo: "…"` messages.
sub pointers_in {
    my ($path) = @_;
    my $text = slurp($path);
    my @found;
    while ($text =~ /\b(read|todo):\s*"((?:[^"\\]|\\.)*)"/gs) {
        my ($field, $literal, $at) = ($1, $2, $-[0]);
        my $line = 1 + (substr($text, 0, $at) =~ tr/\n//);
        my $value = rust_string($literal);
        if ($field eq 'read') {
            push @found, [$line, $value];
            next;
        }
        # "(chapter …)": to its matching parenthesis.
        while ($value =~ /\((?=chapter \d)/g) {
            my ($depth, $start, $end) = (1, pos($value), undef);
            for my $i ($start .. length($value) - 1) {
                my $c = substr($value, $i, 1);
                $depth++ if $c eq '(';
                $depth-- if $c eq ')';
                if ($depth == 0) { $end = $i; last }
            }
            $end //= length $value;
            push @found, [$line, substr($value, $start, $end - $start)];
        }
    }
    return @found;
}

sub pointers {
    my ($root, $src, $html, @files) = @_;
    my %chapter = chapter_numbers($src);
    my %pages_of;
    push @{ $pages_of{ $chapter{$_} } }, $_ for sort keys %chapter;
    my $src_rel = File::Spec->abs2rel($src, $root);
    for my $file (@files) {
        my $rel = File::Spec->abs2rel($file, $root);
        for my $pointer (pointers_in($file)) {
            my ($line, $text) = @$pointer;
            my $where = "$rel:$line";
            my ($n) = $text =~ /^chapter (\d+)\b/;
            if (!defined $n) {
                finding('pointer', $where, $text, 'does not start "chapter N, "');
                next;
            }
            my @links = $text =~ /\b(\Q$src_rel\E\/[^\s()#]+\.md#[\w-]+)/g;
            if (!@links) {
                # No link: say which heading of chapter N it might link.
                my $what  = 'no link: write it as "' . $text . ' (' . "$src_rel/PAGE.md#ID" . ')"';
                my $named = $text =~ s/^chapter \d+,\s*//r;
                my @names = map { s/^and\s+//r } split /,\s+/, $named;
                # "Part 2: The old root goes" names the heading "Part 2: …", or one below it.
                my @ids;
                for my $name (@names) {
                    my $found;
                    for my $page (@{ $pages_of{$n} // [] }) {
                        my $heading = find_heading($name, headings_of("$html/" . ($page =~ s/\.md$/.html/r)));
                        if ($heading) { $found = "$src_rel/$page#$heading->[0]$heading->[1]"; last }
                    }
                    push @ids, $found // "no heading \"$name\" in chapter $n";
                }
                finding('pointer', $where, $text, "$what; the headings it names: " . join('; ', @ids));
                next;
            }
            for my $link (@links) {
                my ($page, $id) = $link =~ /^\Q$src_rel\E\/(.+)#(.+)$/;
                my $built = "$html/" . ($page =~ s/\.md$/.html/r);
                if (!-f "$src/$page" || !-f $built) {
                    finding('pointer', $where, $text, "$link: no such page in the built book");
                    next;
                }
                if (($chapter{$page} // -1) != $n) {
                    finding('pointer', $where, $text, "$link: the page is not in chapter $n (SUMMARY.md)");
                    next;
                }
                my %heading = map { @$_ } headings_of($built);
                if (!exists $heading{$id}) {
                    finding('pointer', $where, $text, "$link: no heading with id \"$id\" on the built page");
                    next;
                }
                (my $named = lc $heading{$id}) =~ s/`//g;
                (my $said  = lc $text) =~ s/`//g;
                if (index($said, $named) < 0) {
                    finding('pointer', $where, $text, "$link: the pointer does not name its heading, \"$heading{$id}\"");
                    next;
                }
                finding('link', $where, $text, $link);
            }
        }
    }
}

# ---------------------------------------------------------------------------
# folded ROOT SRC HTML: in the workshop edition built in HTML, each piece of
# tests/workshop/exercises.rs is in a "Show the reference" box on its chapter's pages,
# and nowhere there in a code block outside a folded box.
# ---------------------------------------------------------------------------
sub folded {
    my ($root, $src, $html) = @_;
    my %chapter = chapter_numbers($src);
    my $exercises = slurp("$root/tests/workshop/exercises.rs");
    my @pieces;
    while ($exercises =~ /stage:\s*StageId::of\("(\d+)\.(\d+)"\),\s*file:\s*"([^"]+)",\s*function:\s*"([^"]+)"/g) {
        push @pieces, { step => $1, stage => "$1.$2", function => $4 };
    }
    for my $piece (@pieces) {
        my $folded = 0;
        for my $page (sort grep { $chapter{$_} == $piece->{step} } keys %chapter) {
            my $text = slurp("$html/" . ($page =~ s/\.md$/.html/r));
            my (@open, $unfolded);
            # Walk the page's <details> and <pre>: where each <pre> naming `fn FUNCTION` is.
            while ($text =~ /<(\/?)(details|pre)\b([^>]*)>/g) {
                my ($close, $tag, $attributes) = ($1, $2, $3);
                if ($tag eq 'details') {
                    if ($close) { pop @open } else { push @open, $attributes =~ /class="reference"/ ? 'reference' : 'other' }
                    next;
                }
                next if $close;
                my $end  = index($text, '</pre>', pos $text);
                my $code = substr($text, pos $text, $end - pos $text);
                next unless $code =~ /\bfn\s+\Q$piece->{function}\E\b/;
                if (grep { $_ eq 'reference' } @open) { $folded++ }
                elsif (!@open) { $unfolded = 1 }
            }
            finding('unfolded', $page, $piece->{stage}, $piece->{function}) if $unfolded;
        }
        finding($folded ? 'folded' : 'missing', $piece->{stage}, $piece->{function}, $folded);
    }
}

# table SRC: the pages' figures, as a Markdown table.
sub table {
    my ($src) = @_;
    open my $out, '>', \my $buffer or die;
    {
        local *STDOUT = $out;
        pages($src);
    }
    close $out;
    print "| page | lines | words of prose | code blocks | longest run of prose |\n|---|--:|--:|--:|--:|\n";
    for (split /\n/, $buffer) {
        my ($kind, @field) = split /\t/;
        print '| ' . join(' | ', @field) . " |\n" if $kind eq 'stats';
    }
}

binmode STDOUT, ':encoding(UTF-8)';
my $command = shift @ARGV // '';
if ($command eq 'pages' && @ARGV == 1) {
    pages(@ARGV);
} elsif ($command eq 'table' && @ARGV == 1) {
    table(@ARGV);
} elsif ($command eq 'pointers' && @ARGV >= 4) {
    pointers(@ARGV);
} elsif ($command eq 'folded' && @ARGV == 3) {
    folded(@ARGV);
} else {
    die "usage: rules.pl pages SRC | table SRC | pointers ROOT SRC HTML FILE... | folded ROOT SRC HTML\n";
}
