#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The layers of src/ (docs/ARCHITECTURE.md, "Layers"): base < settings, jwt < ssm, store < core.
# Computed from the compiled objects: file A calls file B when A's object leaves undefined a
# symbol that B's object defines (nm); and from the #include lines of src/. Fails, printing the
# calls or includes that do it, when
#   - files call each other in a circle (A calls B ... calls A), within src/ or across folders;
#   - a file of a lower layer calls or includes one of a higher layer (store/ calling core/,
#     settings/ including ssm/...); src/internal.h, the shared declarations, is of no layer.
#   usage: test_layers.sh BUILD_DIR [SOURCE_DIR]
#   TEST_LAYERS_GRAPH=1 test_layers.sh BUILD_DIR   also prints every call between files
#   the programs of tools/ (each a group of its own) are checked for circles too;
#   TEST_LAYERS_TOOLS=0 test_layers.sh BUILD_DIR   checks src/ alone
set -uo pipefail
build=$(cd "$1" && pwd)
source_dir=$(cd "${2:-$(dirname "$0")/../..}" && pwd)
command -v nm >/dev/null || { echo "test_layers: needs nm (binutils)" >&2; exit 77; }
command -v python3 >/dev/null || { echo "test_layers: needs python3" >&2; exit 77; }

lib="$build/CMakeFiles/bkoauth_objects.dir/src"
[ -d "$lib" ] || { echo "test_layers: no objects in $lib" >&2; exit 1; }
groups=("library:$lib:folders")
if [ "${TEST_LAYERS_TOOLS:-1}" = 1 ]; then
  for dir in "$build"/tools/CMakeFiles/*.dir; do
    [ -d "$dir" ] && groups+=("$(basename "$dir" .dir):$dir:files")
  done
fi

SOURCE_DIR="$source_dir" python3 - "${groups[@]}" <<'EOF'
import collections, os, subprocess, sys

def objects(top):
    for root, _, files in os.walk(top):
        for f in files:
            if f.endswith(".o"):
                yield os.path.join(root, f)

def calls(top, src=None):
    """file -> file -> symbols, from nm: undefined in one object, defined (global) in another.
    With src: only the objects whose source is still there (a build directory keeps the objects
    of files since moved or removed)."""
    defined, undefined = {}, {}
    for o in sorted(objects(top)):
        name = os.path.relpath(o, top)[: -len(".o")]
        if src is not None and not os.path.exists(os.path.join(src, name)):
            continue
        out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
        undefined[name] = set()
        for line in out.splitlines():
            p = line.split()
            if len(p) == 2 and p[0] == "U":
                undefined[name].add(p[1])
            elif len(p) == 3 and p[1] in "TDBRGSVWi":
                defined[p[2]] = name
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for f, syms in undefined.items():
        for s in syms:
            g = defined.get(s)
            if g is not None and g != f:
                edges[f][g].add(s)
    return list(undefined), edges

def cycles(nodes, edges):
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1
        stack.append(v); on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index: visit(v)
    return out

def report(kind, comps, edges):
    for comp in comps:
        print(f"FAIL: {kind} calling each other in a circle: {' '.join(comp)}", file=sys.stderr)
        for a in comp:
            for b in sorted(edges.get(a, {})):
                if b in comp:
                    print(f"  {a} -> {b}: {' '.join(sorted(edges[a][b]))}", file=sys.stderr)
    return len(comps)

# The layers, lowest first: a folder calls and includes only its own layer and those below.
RANK = {"base": 0, "settings": 1, "jwt": 1, "ssm": 2, "store": 2, "core": 3}

def fold(f):
    return f.split("/")[0] if "/" in f else "."

def layer_calls(edges):
    """Calls from a lower layer to a higher one, printed; their count."""
    bad = 0
    for a in sorted(edges):
        for b in sorted(edges[a]):
            ra, rb = RANK.get(fold(a)), RANK.get(fold(b))
            if ra is None or rb is None:
                print(f"FAIL: library: {a} -> {b}: a folder of no layer (RANK in test_layers.sh)", file=sys.stderr)
                bad += 1
            elif ra < rb:
                print(f"FAIL: library: {a} ({fold(a)}) calls up into {b} ({fold(b)}): "
                      f"{' '.join(sorted(edges[a][b]))}", file=sys.stderr)
                bad += 1
    return bad

def layer_includes(src):
    """#include "..." lines of src/ naming a header of a higher layer, printed; their count."""
    import re
    dirs = [src] + [os.path.join(src, d) for d in ("base", "core", "settings", "store")]
    bad, seen = 0, 0
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, src)
            if fold(rel) == ".":
                continue
            for n, line in enumerate(open(path, encoding="utf-8"), 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m:
                    continue
                seen += 1
                for d in [root] + dirs:
                    target = os.path.normpath(os.path.join(d, m.group(1)))
                    if os.path.exists(target):
                        break
                else:
                    continue
                trel = os.path.relpath(target, src)
                ra, rb = RANK.get(fold(rel)), RANK.get(fold(trel))
                if fold(trel) != "." and ra is not None and rb is not None and ra < rb:
                    print(f"FAIL: library: {rel}:{n} ({fold(rel)}) includes {trel} ({fold(trel)})", file=sys.stderr)
                    bad += 1
    return bad, seen

failures = 0
show = os.environ.get("TEST_LAYERS_GRAPH") == "1"
for g in sys.argv[1:]:
    label, top, level = g.split(":")
    src = os.path.join(os.environ["SOURCE_DIR"], "src") if level == "folders" else None
    nodes, edges = calls(top, src)
    if len(nodes) < 2:
        if level == "files":  # a program of one file has no circle
            continue
        print(f"test_layers: {label}: only {len(nodes)} object(s) in {top}", file=sys.stderr)
        sys.exit(1)
    if show:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f"{label}: {a} -> {b}: {' '.join(sorted(edges[a][b]))}")
    failures += report(f"{label}: files", cycles(nodes, edges), edges)
    if level == "folders":
        failures += layer_calls(edges)
        bad, seen = layer_includes(os.path.join(os.environ["SOURCE_DIR"], "src"))
        failures += bad
        print(f"test_layers: {label}: {seen} include lines read")
        fe = collections.defaultdict(lambda: collections.defaultdict(set))
        for a in edges:
            for b in edges[a]:
                if fold(a) != fold(b):
                    fe[fold(a)][fold(b)] |= {f"{a}->{b}"}
        if show:
            for a in sorted(fe):
                print(f"{label}: folder {a} -> {' '.join(sorted(fe[a]))}")
        failures += report(f"{label}: folders", cycles({fold(f) for f in nodes}, fe), fe)
    print(f"test_layers: {label}: {len(nodes)} files, {sum(len(v) for v in edges.values())} calls between files")
if failures:
    print(f"test_layers: {failures} circle(s) or call(s) up a layer (docs/ARCHITECTURE.md, Layers)", file=sys.stderr)
    sys.exit(1)
print("test_layers: no circles, no calls or includes up a layer")
EOF
