#!/usr/bin/env python3
"""Import cycles between the files of a Rust crate's src/.

An edge A -> B is a `crate::...` or `super::...` path in A naming B (or an
item of B), or a parent module (mod.rs, lib.rs) naming an item of one of
its children. `mod x;` declarations are not edges, nor is test code
(`#[cfg(test)] mod tests { ... }`). Prints each cycle; exits 1 when there
is one. Usage: check-import-cycles.py SRC_DIR...
"""
import os
import re
import sys


def modpath(p):
    parts = p[:-3].split("/")
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def edges_of(root):
    files = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.relpath(os.path.join(d, f), root)
                with open(os.path.join(d, f)) as fh:
                    files[p] = fh.read()
    mods = {tuple(modpath(p)): p for p in files}

    def resolve(path):
        for i in range(len(path), -1, -1):
            if tuple(path[:i]) in mods:
                return mods[tuple(path[:i])]
        return None

    edges = {p: set() for p in files}
    for p, s in files.items():
        s = re.split(r"#\[cfg\(test\)\]\s*mod tests \{", s)[0]
        s = re.sub(r"//[^\n]*", "", s)  # comments name paths without using them
        cur = modpath(p)
        is_mod = p.endswith("mod.rs") or p == "lib.rs"
        parent = cur[:-1]
        for m in re.finditer(r"(crate|super)::([A-Za-z_:]*)", s):
            rest = [x for x in m.group(2).split("::") if x]
            base = [] if m.group(1) == "crate" else parent
            t = resolve(base + rest)
            if t and t != p:
                edges[p].add(t)
        if is_mod:
            children = [k[-1] for k in mods if len(k) == len(cur) + 1 and list(k[:-1]) == cur]
            for ch in children:
                for m in re.finditer(r"(?<![\w:])" + ch + r"::([A-Za-z_:]+)", s):
                    t = resolve(cur + [ch] + m.group(1).split("::"))
                    if t and t != p:
                        edges[p].add(t)
    return edges


def cycles(edges):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    found = 0
    for root in sys.argv[1:]:
        edges = edges_of(root)
        for comp in cycles(edges):
            found += 1
            print(f"{root}: import cycle:")
            for a in comp:
                print(f"  {a} -> {sorted(b for b in edges[a] if b in comp)}")
        print(f"{root}: {len(edges)} files checked")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
