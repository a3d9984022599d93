#!/usr/bin/env bash
# Fails when a `crate::…` path (or a `super::` path that climbs to the crate root) in src/
# runs against the layers: host → app → ui → api → {client, server} → error → domain → model.
# A module may name its own layer and the layers below it, never one above, and client and
# server never name each other. Prints every offending line.
#
#   scripts/check-layers.sh          checks this tree
#   scripts/check-layers.sh DIR      checks DIR/src (e.g. a copy with a deliberate back-import)
#   scripts/check-layers.sh --self-test
#                                    proves the check: a copy of src/ passes, and each of a few
#                                    deliberate back-imports put into a copy fails with its line
#
# Comments and string literals are skipped (a doc link is not an import). Limitation: a
# `super::super::…` inside an inline `mod` is resolved as if the `mod` were not there, so it
# can only be reported when it names a top-level module by mistake.
set -euo pipefail
if [ "${1:-}" = "--self-test" ]; then
  SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
  SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/src"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/check-layers.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  cp -r "$SOURCE" "$WORK/src"
  "$SELF" "$WORK" >/dev/null || { echo "self-test: an unchanged copy of src/ fails" >&2; exit 1; }
  # file | line appended to it | what the report must say
  while IFS='|' read -r file line expected; do
    rm -rf "$WORK/src" && cp -r "$SOURCE" "$WORK/src"
    printf '\n%s\n' "$line" >> "$WORK/src/$file"
    if output="$("$SELF" "$WORK" 2>&1)"; then
      echo "self-test: the back-import in $file passed: $line" >&2
      exit 1
    fi
    if ! grep -qF "$expected" <<<"$output"; then
      echo "self-test: the report for $file does not say \"$expected\":" >&2
      echo "$output" >&2
      exit 1
    fi
  done <<'CASES'
domain/health.rs|use crate::ui::format;|domain must not import ui
model/names.rs|fn leak() { let _ = crate::domain::graph::EdgeKind::Depends; }|model must not import domain
client/settings.rs|use crate::server::storage::Storage;|client must not import server
server/config.rs|use crate::api::ENDPOINTS;|server must not import api
ui/format.rs|use crate::app::App;|ui must not import app
CASES
  echo "check-layers self-test: a clean copy passes and 5 deliberate back-imports fail"
  exit 0
fi
ROOT="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
if [ ! -d "$ROOT/src" ]; then
  echo "check-layers: no src/ directory in $ROOT" >&2
  exit 2
fi
cd "$ROOT"
find src -name '*.rs' -print0 | sort -z | perl -0 -e '
use strict;
use warnings;

# Top-level module → layer rank. A module may name modules of a lower rank, and itself.
my %rank = (
    model => 0,
    domain => 1, guest_protocol => 1,   # pure rules (guest_protocol: the WV1 wire format)
    error => 2,                         # AppError, the server-function error type
    client => 3, server => 3,           # browser side, server side: never each other
    api => 4,                           # server functions: call server, used by ui
    ui => 5,
    app => 6,                           # the HTML shell, <App/> and its contexts
    host => 7,                          # the composition root of the server binary
    lib => 8,                           # src/lib.rs, the crate root
);
my $rule = "host → app → ui → api → {client, server} → error → domain → model "
    . "(guest_protocol sits with domain; client and server never import each other)";

# Blanks out comments and the contents of string and char literals, keeping line breaks.
# One pass of anchored matches (`\G`): plain code is copied a run at a time.
sub strip {
    my ($text) = @_;
    my $out = "";
    my $n = length $text;
    my $blank = sub { my $s = shift; $s =~ s/[^\n]/ /g; $s };
    pos($text) = 0;
    while (pos($text) < $n) {
        if ($text =~ /\G(\/\/[^\n]*)/gc) {
            $out .= " " x length $1;
        } elsif ($text =~ /\G\/\*/gc) {
            my $start = pos($text) - 2;
            my $depth = 1;
            while ($depth > 0 && $text =~ /\G.*?(\/\*|\*\/)/gcs) {
                $depth += $1 eq "/*" ? 1 : -1;
            }
            pos($text) = $n if $depth > 0;
            $out .= $blank->(substr($text, $start, pos($text) - $start));
        } elsif ($text =~ /\G(?<!\w)(b?r(#*)")/gc) {
            my ($open, $hashes) = ($1, $2);
            my $start = pos($text) - length $open;
            my $close = "\"" . $hashes;
            my $end = index($text, $close, pos($text));
            my $stop = $end < 0 ? $n : $end + length $close;
            $out .= $blank->(substr($text, $start, $stop - $start));
            pos($text) = $stop;
        } elsif ($text =~ /\G("(?:[^"\\]|\\.)*(?:"|\z))/gcs) {
            $out .= $blank->($1);
        } elsif ($text =~ /\G(\x27(?:\\.[^\x27]*|[^\\\x27])\x27)/gcs) {
            # A char literal (a lifetime has no closing quote right after one character).
            $out .= " " x length $1;
        } elsif ($text =~ /\G((?:[^\/"\x27rb]|(?<=\w)[rb])+)/gc) {
            $out .= $1;
        } else {
            $text =~ /\G(.)/gcs;
            $out .= $1;
        }
    }
    return $out;
}

# The first identifiers of the items of a `{…}` use group starting at $pos (after the brace).
sub group_heads {
    my ($text, $pos) = @_;
    my ($depth, $item, @heads) = (1, "", ());
    while ($pos < length $text && $depth > 0) {
        my $c = substr($text, $pos++, 1);
        if ($c eq "{") { $depth++; }
        elsif ($c eq "}") { $depth--; }
        if ($depth == 1 && $c eq ",") { push @heads, $item; $item = ""; next; }
        $item .= $c if $depth >= 1;
    }
    push @heads, $item;
    return map { /\A\s*(\w+)/ ? $1 : () } @heads;
}

my $failures = 0;
my @unknown;
local $/ = "\0";
while (my $path = <STDIN>) {
    chomp $path;
    next if $path eq "src/main.rs";   # the binary: it names the library as webvm_appserver::
    my @parts = split m{/}, $path;
    shift @parts;                      # "src"
    $parts[-1] =~ s/\.rs\z//;
    pop @parts if $parts[-1] eq "mod";
    @parts = () if "@parts" eq "lib";
    my $top = @parts ? $parts[0] : "lib";
    unless (exists $rank{$top}) { push @unknown, $path; next; }
    open my $fh, "<:encoding(UTF-8)", $path or die "$path: $!";
    my $original = do { local $/; <$fh> };
    close $fh;
    my @lines = split /\n/, $original, -1;
    my $code = strip($original);
    my @found;   # [offset, target]
    while ($code =~ /(?<![\w])crate\s*::\s*(\w+|\{)/g) {
        my ($target, $at) = ($1, $-[0]);
        if ($target eq "{") { push @found, [$at, $_] for group_heads($code, $+[0]); }
        else { push @found, [$at, $target]; }
    }
    while ($code =~ /(?<![\w:])((?:super\s*::\s*)+)(\w+|\{)/g) {
        my ($supers, $target, $at) = ($1, $2, $-[0]);
        my $climbs = () = $supers =~ /super/g;
        next unless $climbs == scalar @parts;   # not up to the crate root
        if ($target eq "{") { push @found, [$at, $_] for group_heads($code, $+[0]); }
        else { push @found, [$at, $target]; }
    }
    my %seen;
    for my $hit (sort { $a->[0] <=> $b->[0] } @found) {
        my ($at, $target) = @$hit;
        next unless exists $rank{$target};
        next if $target eq $top;
        next if $rank{$target} < $rank{$top};
        my $line = (substr($code, 0, $at) =~ tr/\n//) + 1;
        next if $seen{"$line $target"}++;
        my $text = $lines[$line - 1];
        $text =~ s/\A\s+//;
        print "$path:$line: $top must not import $target: $text\n";
        $failures++;
    }
}
for my $path (@unknown) {
    print "$path: a top-level module the layer table does not know: add it to scripts/check-layers.sh\n";
    $failures++;
}
if ($failures) {
    print STDERR "\n$failures import(s) above run against the layers: $rule\n";
    exit 1;
}
print "every crate:: import follows the layers: $rule\n";
'
