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


def pg_own_write(block, ours):
    """A known kind (padding bytes written out) where pdp_ext only called into
    PostgreSQL, which then wrote its own buffer: a frame of the server binary
    stands between the write and the first pdp_ext frame, and the written
    block was not allocated by pdp_ext.  pdp_ext's background worker commits
    (WAL flush) and connects (relcache init file) like any backend."""
    if not any(k.search(block[0]) for k in KNOWN):
        return False
    # In either stack, pdp_ext is to blame only where its frame comes before
    # (is called by nothing but) the server's own frames.
    stack, alloc = [], []
    target = stack
    for line in block[1:]:
        if line.lstrip().startswith('Address'):
            target = alloc
        target.append(line)
    def pdp_first(lines):
        first_ours = next((i for i, line in enumerate(lines) if ours.search(line)), None)
        first_pg = next((i for i, line in enumerate(lines) if '/bin/postgres' in line), None)
        return first_ours is not None and (first_pg is None or first_ours < first_pg)
    return not pdp_first(stack) and not pdp_first(alloc)


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
    wal = ['Syscall param pwrite64(buf) points to uninitialised byte(s)', '   at 0x1: pwrite (pwrite64.c:25)',
           '   by 0x2: XLogFlush (in /usr/lib/postgresql/15/bin/postgres)',
           f'   by 0x3: audit_worker_seal ({src.rstrip("/")}/src/audit_durable.c:586)']
    assert pg_own_write(wal, ours)
    assert not pg_own_write([wal[0], wal[1], f'   by 0x2: pdp_bad ({src.rstrip("/")}/src/visibility.c:1)', wal[2]], ours)
    kinds = Counter()
    mine, other = [], []
    for path, block in reports(paths):
        kinds[re.sub(r'0x[0-9A-Fa-f]+|\d+', 'N', block[0])] += 1
        if any(ours.search(line) for line in block) and not pg_own_write(block, ours):
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
