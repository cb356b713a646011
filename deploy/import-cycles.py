#!/usr/bin/env python3
"""Import cycles between the files of each crate given (its `src/` folder):
which file uses which other file of the same crate, through `use crate::…`,
`use super::…` and `crate::a::b` paths in code (test modules left out). A
file that reaches itself through others is a cycle: `make lint` fails on one,
so each layer keeps depending in one direction only.

usage: deploy/import-cycles.py services/dispatch/src [more src folders…]
"""
import os, re, sys


def cycles(root):
    mods = {}
    for dp, dn, fn in os.walk(root):
        for f in fn:
            if not f.endswith('.rs'): continue
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, root)[:-3]
            parts = rel.split(os.sep)
            if parts[-1] in ('mod', 'lib', 'main'): parts = parts[:-1]
            mods[tuple(parts)] = p
    def resolve(path):
        # longest prefix that is a module
        for n in range(len(path), 0, -1):
            if tuple(path[:n]) in mods: return tuple(path[:n])
        return None
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        src = open(p).read()
        # drop test modules
        k = src.find('#[cfg(test)]\nmod tests')
        if k >= 0: src = src[:k]
        # expand use-trees crudely: find `crate::` followed by path, and braces groups
        for use in re.findall(r'use\s+(crate::[^;]+|super::[^;]+);', src, re.S):
            use = re.sub(r'\s+', '', use)
            def expand(prefix, tree):
                out = []
                depth = 0; cur = ''; items = []
                if tree.startswith('{') and tree.endswith('}'):
                    inner = tree[1:-1]
                    for ch in inner:
                        if ch == '{': depth += 1
                        if ch == '}': depth -= 1
                        if ch == ',' and depth == 0: items.append(cur); cur = ''
                        else: cur += ch
                    if cur: items.append(cur)
                    for it in items: out += expand(prefix, it)
                    return out
                if '::{' in tree:
                    head, rest = tree.split('::{', 1)
                    return expand(prefix + head.split('::'), '{' + rest)
                return [prefix + tree.split('::')]
            base = use.split('::', 1)
            if base[0] == 'crate': paths = expand([], base[1])
            else:
                parent = list(m[:-1]) if not p.endswith('mod.rs') else list(m[:-1])
                paths = [parent + q for q in expand([], base[1])]
            for q in paths:
                q = [x for x in q if x not in ('self',)]
                t = resolve(q)
                if t and t != m and t != m[:len(t)]: edges[m].add(t)
        for q in re.findall(r'crate::((?:\w+::)+)', src):
            t = resolve(q.strip(':').split('::'))
            if t and t != m and t != m[:len(t)]: edges[m].add(t)
    # find cycles (SCCs)
    index = {}; low = {}; stack = []; on = set(); sccs = []; i = [0]
    sys.setrecursionlimit(10000)
    def strong(v):
        index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
        for w in edges[v]:
            if w not in index: strong(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(comp)
    for v in mods:
        if v not in index: strong(v)
    return sccs, edges


def main():
    found = False
    for root in sys.argv[1:]:
        sccs, edges = cycles(root)
        for c in sccs:
            found = True
            print(f"{root}: import cycle among", ", ".join(sorted("/".join(x) or "lib" for x in c)))
            for a in sorted(c):
                for b in sorted(edges[a]):
                    if b in c:
                        print("    ", "/".join(a) or "lib", "->", "/".join(b) or "lib")
    if found:
        sys.exit(1)
    print(f"import cycles: none in {len(sys.argv) - 1} crates")


if __name__ == "__main__":
    main()
