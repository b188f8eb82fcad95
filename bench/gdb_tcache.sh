#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# gdb_tcache.sh PID: what glibc's per-thread caches (tcache) of a running process hold, read with
# gdb (needs the C library's debug symbols: Debian's libc6-dbg): the number of threads, the
# bytes in all their caches, and the blocks per chunk size summed over the threads. Stops the
# process for about half a second.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: gdb_tcache.sh PID" >&2; exit 2; }
gdb -p "$1" -batch -ex 'set pagination off' -ex 'thread apply all p tcache == 0 ? 0 : tcache->counts' 2>/dev/null |
python3 -c '
import re, sys
total, bins, threads = 0, [0] * 64, 0
for line in sys.stdin:
    m = re.search(r"\$\d+ = \{(.*)\}", line)
    if not m:
        continue
    threads += 1
    values = []
    for part in m.group(1).split(","):
        part = part.strip()
        r = re.match(r"(\d+) <repeats (\d+) times>", part)
        if r:
            values += [int(r.group(1))] * int(r.group(2))
        elif part:
            values.append(int(part))
    for i, v in enumerate(values[:64]):
        bins[i] += v
        total += v * (32 + 16 * i)
print("threads %d, in their caches %d kB" % (threads, total // 1024))
print("blocks per chunk size: " + " ".join("%d:%d" % (32 + 16 * i, b) for i, b in enumerate(bins) if b))
'
