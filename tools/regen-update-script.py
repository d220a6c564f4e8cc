#!/usr/bin/env python3
# Copy the current body of every function and procedure that an update-script
# part re-creates (CREATE OR REPLACE FUNCTION/PROCEDURE ...) from src/sql, so the
# update script's bodies are byte-identical to the install script's
# (test/tap/010_upgrade.pl compares them).  A statement is matched on its first
# line (CREATE FUNCTION pdp.name(args...) ...), which must be the same in both.
#
#   tools/regen-update-script.py versions/0.3--0.4/*.sql
import glob
import os
import re
import sys


def stmt_end(text, start):
    """End of the statement at start: a C function ends at its first ';' before any $$."""
    semi = text.index(';\n', start)
    dollar = text.find('$$', start)
    if dollar < 0 or semi < dollar:
        return semi + 1
    return text.index('$$;', dollar + 2) + 3


def regen(path):
    root = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(os.path.join(root, 'src', 'sql')):
        parent = os.path.dirname(root)
        if parent == root:
            sys.exit('%s: no src/sql above it' % path)
        root = parent
    src = ''.join(open(f).read() for f in sorted(glob.glob(os.path.join(root, 'src/sql/*.sql'))))
    s = open(path).read()
    out, pos, n, missing = [], 0, 0, 0
    for m in re.finditer(r'^CREATE OR REPLACE (FUNCTION|PROCEDURE) ([^\n]*)\n', s, re.M):
        if m.start() < pos:
            continue
        end = stmt_end(s, m.start())
        first = 'CREATE ' + m.group(1) + ' ' + m.group(2) + '\n'
        i = src.find(first)
        out.append(s[pos:m.start()])
        if i < 0:
            sys.stderr.write('%s: not in src/sql: %s' % (path, first))
            out.append(s[m.start():end])
            missing += 1
        else:
            body = src[i:stmt_end(src, i)]
            out.append(body.replace('CREATE ' + m.group(1), 'CREATE OR REPLACE ' + m.group(1), 1))
            n += 1
        pos = end
    out.append(s[pos:])
    open(path, 'w').write(''.join(out))
    sys.stderr.write('%s: %d regenerated, %d not found\n' % (path, n, missing))
    return missing


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit('usage: tools/regen-update-script.py PART.sql ...')
    sys.exit(1 if sum(regen(p) for p in sys.argv[1:]) else 0)
