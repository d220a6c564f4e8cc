#!/usr/bin/env python3
"""Read valgrind memcheck logs; fail on any report with a pdp_ext frame.

Usage: tools/valgrind-reports.py SRC_DIR LOG...   (tools/run-instrumented.sh valgrind)

Debian's server is not built for valgrind, so its own known reports (padding
bytes written to WAL and relation files, the regex cache's overlapping
memcpy) appear too; they are counted and listed by kind, not failed on.  A
report is pdp_ext's when a line of its stack or of its allocation stack is in
pdp_ext.so: a source file under SRC_DIR/src (valgrind runs with
--fullpath-after=, so frames with debug information carry full paths) or the
library's name (frames without).  Exits 1 if there is one, and prints it.
"""
import re
import sys
from collections import Counter

LINE = re.compile(r'^==\d+== ?(.*)$')
# PostgreSQL's own reports without USE_VALGRIND: padding bytes of WAL records
# and buffers written out, and the regex cache moving its entries.
KNOWN = [re.compile(r'^Syscall param (p?write\w*)\(buf\) points to uninitialised byte'),
         re.compile(r'^Source and destination overlap in memcpy')]


def reports(paths):
    """Yield each report of each log as a list of lines."""
    for path in paths:
        block = []
        with open(path, errors='replace') as f:
            for raw in f:
                m = LINE.match(raw.rstrip('\n'))
                if not m:
                    continue
                body = m.group(1)
                if body.strip():
                    block.append(body)
                elif block:
                    yield path, block
                    block = []
        if block:
            yield path, block


def main(src, paths):
    ours = re.compile(r'pdp_ext\.so|' + re.escape(src.rstrip('/') + '/src/'))
    # The filter itself: it must flag a report through pdp_ext, not a core one.
    assert ours.search(f'   at 0x1: ff1_encrypt ({src.rstrip("/")}/src/core/ff1.c:10)')
    assert ours.search('   by 0x2: ??? (in /usr/lib/postgresql/15/lib/pdp_ext.so)')
    assert not ours.search('   by 0x2: XLogFlush (in /usr/lib/postgresql/15/bin/postgres)')
    kinds = Counter()
    mine, other = [], []
    for path, block in reports(paths):
        kinds[re.sub(r'0x[0-9A-Fa-f]+|\d+', 'N', block[0])] += 1
        if any(ours.search(line) for line in block):
            mine.append((path, block))
        elif not any(k.search(block[0]) for k in KNOWN):
            other.append((path, block))
    print(f'valgrind: {len(paths)} process logs, {sum(kinds.values())} reports, {len(mine)} involving pdp_ext')
    for kind, n in kinds.most_common():
        print(f'  {n:5}  {kind}')
    # Reports of another kind without a pdp_ext frame: shown in full, so that
    # a reader can tell whose they are, but not failed on.
    for path, block in other:
        print(f'--- not pdp_ext\'s, not a known PostgreSQL report ({path}):')
        print('\n'.join(block[:40]))
    for path, block in mine:
        print(f'--- pdp_ext ({path}):')
        print('\n'.join(block))
    return 1 if mine else 0


if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
