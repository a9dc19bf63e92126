# Allocation-heavy Perl workload for the preload tests. Deterministic output.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $seed = 42;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed; }
my @words = map { join("", map { chr(97 + rnd() % 26) } 1 .. (3 + rnd() % 10)) } 1 .. 30000;
my %h;
push @{ $h{ substr($_, 0, 2) } }, $_ for @words;
my @sorted = sort { length($a) <=> length($b) or $a cmp $b } @words;
my $text = join(" ", @words) x 4;
my %count;
$count{$_}++ for split /\s+/, $text;
my @pairs = map { [$_, $count{$_}] } sort keys %count;
my $str = "";
$str .= "$_->[0]=$_->[1];" for @pairs;
(my $subst = $text) =~ s/([aeiou])/uc $1/ge;
print "buckets ", scalar(keys %h), "\n";
print "first ", join(",", @sorted[0 .. 5]), "\n";
print "digest ", md5_hex($str . $subst), "\n";
