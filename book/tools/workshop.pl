#!/usr/bin/env perl
# The workshop edition's mdBook preprocessor: each code block that shows a piece a stage asks
# the learner to write is folded behind a "Show the reference" control, so that following a
# `todo!()`'s or a check's "read:" pointer lands on the explanation, not on the answer.
#
# The pieces are tests/workshop/exercises.rs's PIECES: a stage, a file of steps/stepN/ and a
# function. A code block shows one when it {{#include}}s that file whole, or a region of it
# (an anchor, or a line range) that holds the line `fn FUNCTION`. Only code blocks at the
# left margin are folded; nothing else of the page changes, its headings and ids included.
#
# book/tools/edition.sh runs mdBook with it (`just book --workshop`); book.toml does not name
# it, so the book for readers stays as it is. mdBook calls it as `workshop.pl supports
# RENDERER` (any: it writes Markdown), then with [context, book] as JSON on stdin, before
# its own `links` preprocessor expands the includes; it writes the book back on stdout.
use strict;
use warnings;
use JSON::PP;
use File::Basename qw(dirname);
use File::Spec;

exit 0 if @ARGV && $ARGV[0] eq 'supports';

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "workshop.pl: cannot read $path: $!\n";
    local $/;
    return scalar <$fh>;
}

# Paths: a/b/../c to a/c, without asking the filesystem.
sub tidy {
    my ($path) = @_;
    my @out;
    for my $part (split m{/}, $path) {
        next if $part eq '' || $part eq '.';
        if ($part eq '..' && @out && $out[-1] ne '..') { pop @out } else { push @out, $part }
    }
    return join '/', @out;
}

my $json = JSON::PP->new->utf8;
my ($context, $book) = @{ $json->decode(do { local $/; scalar <STDIN> }) };
my $root = dirname($context->{root} =~ s{/+$}{}r);    # the repository: book/'s parent
my $src  = tidy(File::Spec->abs2rel($context->{root}, $root) . '/' . ($context->{config}{book}{src} // 'src'));

# file (relative to the repository) => { lines => [first, last] of each region that holds a
# piece: whole file, anchor, found by the include's spec }; and what to name in the summary.
my %pieces;
my $exercises = slurp("$root/tests/workshop/exercises.rs");
while ($exercises =~ /stage:\s*StageId::of\("(\d+)\.(\d+)"\),\s*file:\s*"([^"]+)",\s*function:\s*"([^"]+)"/g) {
    my ($step, $stage, $file, $function) = ($1, "$1.$2", "steps/step$1/$3", $4);
    my @lines = split /\n/, slurp("$root/$file");
    my ($at) = grep { $lines[$_] =~ /\bfn\s+\Q$function\E\b/ } 0 .. $#lines;
    die "workshop.pl: no `fn $function` in $file (stage $stage)\n" unless defined $at;
    push @{ $pieces{$file} }, { stage => $stage, function => $function, line => $at + 1 };
}

# The lines (1-based, inclusive) that an include's SPEC takes from FILE, as mdBook reads it.
sub region {
    my ($file, $spec) = @_;
    my @lines = split /\n/, slurp("$root/$file");
    return (1, scalar @lines) if $spec eq '';
    if ($spec =~ /^(\d*)(?::(\d*))?$/) {
        my $from = $1 eq '' ? 1 : $1;
        my $to   = defined $2 ? ($2 eq '' ? scalar @lines : $2) : $from;
        return ($from, $to);
    }
    my $anchor = $spec =~ s/:.*//r;
    my ($from, $to);
    for my $i (0 .. $#lines) {
        if (!defined $from && $lines[$i] =~ /ANCHOR:\s*\Q$anchor\E(?![\w-])/) { $from = $i + 1 }
        elsif (defined $from && $lines[$i] =~ /ANCHOR_END:\s*\Q$anchor\E(?![\w-])/) { $to = $i + 1; last }
    }
    return defined $from ? ($from, $to // scalar @lines) : ();
}

# The pieces that a code block's includes show.
sub pieces_in {
    my ($dir, @block) = @_;
    my @shown;
    for my $line (@block) {
        next unless $line =~ /^\s*\{\{\s*#(?:rustdoc_)?include\s+([^\s:}]+)(?::([^\s}]*))?\s*\}\}/;
        my ($path, $spec) = ($1, $2 // '');
        my $file = tidy("$src/$dir/$path");
        next unless $pieces{$file};
        my ($from, $to) = region($file, $spec);
        next unless defined $from;
        push @shown, grep { $_->{line} >= $from && $_->{line} <= $to } @{ $pieces{$file} };
    }
    return @shown;
}

sub fold {
    my ($content, $path) = @_;
    my $dir = dirname($path);
    $dir = '' if $dir eq '.';
    my @lines = split /\n/, $content, -1;
    my @out;
    my $folded = 0;
    for (my $i = 0; $i <= $#lines; $i++) {
        if ($lines[$i] !~ /^(```+|~~~+)/) {
            push @out, $lines[$i];
            next;
        }
        my $fence = $1;
        my $end   = $i + 1;
        $end++ while $end <= $#lines && $lines[$end] !~ /^\Q$fence\E[`~]*\s*$/;
        my @block = @lines[$i .. ($end > $#lines ? $#lines : $end)];
        my @shown = pieces_in($dir, @block);
        if (@shown) {
            my %seen;
            my $names = join ', ', map { "<code>$_->{function}</code>" } grep { !$seen{ $_->{function} }++ } @shown;
            my %stages = map { $_->{stage} => 1 } @shown;
            my $stages = join ', ', sort keys %stages;
            push @out, '<details class="reference">',
                "<summary>Show the reference: $names (stage $stages: try it yourself first)</summary>", '',
                @block, '', '</details>';
            $folded++;
        } else {
            push @out, @block;
        }
        $i = $end;
    }
    return (join("\n", @out), $folded);
}

sub walk {
    my ($items) = @_;
    for my $item (@$items) {
        next unless ref $item eq 'HASH' && $item->{Chapter};
        my $chapter = $item->{Chapter};
        if (defined $chapter->{path}) {
            ($chapter->{content}) = fold($chapter->{content}, $chapter->{source_path} // $chapter->{path});
        }
        walk($chapter->{sub_items} // []);
    }
}

# mdBook 0.5 calls the top-level list `items`; 0.4 called it `sections`.
walk($book->{items} // $book->{sections} // []);
print $json->encode($book);
