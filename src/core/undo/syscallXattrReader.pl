# The extended attribute reader's process (see syscallXattrReader.ts, which starts it and reads
# its answers). Arguments: the llistxattr and lgetxattr system call numbers of the architecture,
# and ENODATA. Reads NUL-terminated paths from stdin; an empty one flushes the answers so far.
# Answers each path with one line: `X` followed by ` <name>:<value>` pairs in hex, or `E <errno>`.
# Names and values are at most 64 KiB each (XATTR_LIST_MAX and XATTR_SIZE_MAX), so one buffer of
# that size fits all.
use strict;
my ($list, $get, $nodata) = @ARGV;
$/ = "\0";
my $names = "\0" x 65536;
my $value = "\0" x 65536;
while (defined(my $path = <STDIN>)) {
  chop $path;
  if ($path eq '') { $| = 1; $| = 0; next; }
  my $length = syscall($list + 0, $path, $names, 65536);
  if ($length < 0) { print 'E ', $! + 0, "\n"; next; }
  my @pairs = ('X');
  my $failed = 0;
  for my $name (split /\0/, substr($names, 0, $length)) {
    my $size = syscall($get + 0, $path, $name, $value, 65536);
    if ($size < 0) { next if $! + 0 == $nodata; $failed = $! + 0; last; }
    push @pairs, unpack('H*', $name) . ':' . unpack('H*', substr($value, 0, $size));
  }
  print $failed ? "E $failed\n" : join(' ', @pairs) . "\n";
}
