#!/usr/bin/env python3
"""Fail if the modules inside any crate of the workspace import each other in a cycle.

rustc allows cycles between the modules of one crate (`a` uses `b::X`, `b` uses `a::Y`), so
nothing stops a crate from growing back into one tangle after the workspace split. This keeps
the layering *inside* each crate one-way. Crates: REPO/src (if it has lib.rs) and every
REPO/crates/*/src, each checked on its own. A module is a .rs file (a/mod.rs is `a`; top-level
lib.rs/main.rs are the root `crate`; src/bin/ is skipped).

Edges come from every `crate::…` / `super::…` path in non-test code (comments, strings,
`#[cfg(test)]` items, `#![cfg(test)]` files removed), use-trees expanded (`use crate::a::{b,
c::D}` -> a::b, a::c::D), resolved to the longest existing module; paths inside an inline
`mod x { … }` resolve relative to it. A module owns its children: ancestor -> descendant is
never an edge (`mod`, `self::`, `crate::` into its own subtree); descendant -> ancestor counts
only when it names an item of the ancestor (`super::Item`, `use super::*`).

Cycles are checked at every level of the module tree: among the children of each module, a
file edge counts as an edge between the two siblings containing its ends (top level: `a::x ->
b` plus `b -> a::y` is the cycle a <-> b). Every file-level cycle shows up at some level.

Usage: check-module-cycles.py [REPO_ROOT] [--graph]   (REPO_ROOT defaults to the script's
parent's parent, i.e. the repo when it lives in scripts/). --graph prints all file edges.
Exit 1 if any crate has a cycle (members and one file:line per edge printed), 2 if REPO_ROOT
has no crate, else 0.
"""
import bisect
import re
import sys
from collections import defaultdict
from pathlib import Path

NOISE = re.compile(r'''//[^\n]*|/\*.*?\*/|(?<![\w$])b?r(\#*)".*?"\1|b?"(?:\\.|[^"\\])*"'''
                   r"""|'(?:\\u\{[0-9a-fA-F]*\}|\\.|[^\\'\n])'|'[A-Za-z_]""", re.S)
CFG_TEST = re.compile(r'#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]')
ATTR = re.compile(r'\s*#\s*\[[^\]]*\]')
MOD_DECL = re.compile(r'\s*(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(\w+)\s*;')
INLINE_MOD = re.compile(r'\bmod\s+(\w+)\s*\{')
PATH_START = re.compile(r'(?<![\w$:])(?:crate|super)\s*::')
TOK = re.compile(r'\s*(::|[{},*]|(?:r#)?[A-Za-z_]\w*)')


def blank(s):
    return re.sub(r'[^\n]', ' ', s)


def close_brace(s, i):
    """Index just past the '}' matching the '{' at s[i]."""
    depth = 0
    for m in re.compile(r'[{}]').finditer(s, i):
        depth += 1 if m.group() == '{' else -1
        if depth == 0:
            return m.end()
    return len(s)


def strip_tests(src):
    """Blank every item behind #[cfg(test)]; return (text, names of `mod x;` test children)."""
    test_children = []
    while (m := CFG_TEST.search(src)):
        i = m.end()
        while (a := ATTR.match(src, i)):
            i = a.end()
        if (d := MOD_DECL.match(src, i)):
            test_children.append(d.group(1))
            end = d.end()
        else:
            j = re.compile(r'[{;]').search(src, i)
            end = len(src) if not j else (j.end() if j.group() == ';' else close_brace(src, j.start()))
        src = src[:m.start()] + blank(src[m.start():end]) + src[end:]
    return src, test_children


def use_tree(src, i, prefix, out):
    """Parse a path / use-tree at src[i]; append (segments, offset) per leaf; return end index."""
    segs, pos = list(prefix), i
    while (m := TOK.match(src, i)):
        t = m.group(1)
        if t == '{':  # `{a, b::c, d as e}` – one subtree per item until the closing brace
            i = m.end()
            while (m := TOK.match(src, i := use_tree(src, i, segs, out))):
                i = m.end()
                if m.group(1) != ',':
                    break
            return i
        if t == '*':
            out.append((segs + ['*'], m.start(1)))
            return m.end()
        if t in ('::', '}', ','):
            break
        segs.append(t.removeprefix('r#'))
        pos, i = m.start(1), m.end()
        nxt = TOK.match(src, i)
        if nxt and nxt.group(1) == '::':
            i = nxt.end()
            continue
        if nxt and nxt.group(1) == 'as':  # `X as Y`: skip the alias
            i = (TOK.match(src, nxt.end()) or nxt).end()
        break
    if len(segs) > len(prefix):
        out.append((segs, pos))
    return i


def resolve(base, segs):
    """Absolute segment list for a path written in module `base`, or None if invalid."""
    cur, segs = ([], segs[1:]) if segs[0] == 'crate' else (list(base), segs)
    while segs and segs[0] in ('super', 'self'):
        if segs.pop(0) == 'super':
            if not cur:
                return None
            cur.pop()
    return cur + (segs[:-1] if segs and segs[-1] == 'self' else segs)


def crate_graph(src_root, repo):
    """Return (modules, edges): edges[a][b] = [(file:line, resolved path), …] in file order."""
    files = {}
    for f in sorted(src_root.rglob('*.rs')):
        parts = f.relative_to(src_root).with_suffix('').parts
        if parts[-1] == 'mod' or parts in (('lib',), ('main',)):
            parts = parts[:-1]  # a/mod.rs is `a`, lib.rs/main.rs the root
        if parts[:1] != ('bin',):  # src/bin/*.rs are separate crate roots
            files[parts] = f
    texts, excluded = {}, set()
    for mod, f in files.items():
        text = NOISE.sub(lambda m: m.group() if m.group().startswith("'") and len(m.group()) == 2
                         else blank(m.group()), f.read_text(encoding='utf-8', errors='replace'))
        if re.search(r'#\s*!\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]', text):
            excluded.add(mod)
        texts[mod], children = strip_tests(text)
        excluded.update(mod + (c,) for c in children)
    modules = {m for m in files if not any(m[:k] in excluded for k in range(len(m) + 1))}
    edges = defaultdict(lambda: defaultdict(list))
    for mod in sorted(modules):
        src, f = texts[mod], files[mod]
        nl = [m.start() for m in re.finditer('\n', src)]
        inline = sorted((m.start(), close_brace(src, m.end() - 1), m.group(1))
                        for m in INLINE_MOD.finditer(src))
        i = 0
        while (m := PATH_START.search(src, i)):
            leaves = []
            i = max(use_tree(src, m.start(), [], leaves), m.end())
            base = mod + tuple(n for a, b, n in inline if a < m.start() < b)
            for segs, pos in leaves:
                p = resolve(base, segs)
                if p is None:
                    continue
                k = max(k for k in range(len(p) + 1) if k == 0 or tuple(p[:k]) in modules)
                tgt, rest = tuple(p[:k]), p[k:]
                if (tgt == mod[:len(tgt)] and not rest) or tgt[:len(mod)] == mod:
                    continue  # self, bare ancestor, or own descendant
                line = bisect.bisect_right(nl, pos) + 1
                edges[mod][tgt].append((f'{f.relative_to(repo)}:{line}', '::'.join(p) or 'crate'))
    return modules, edges


def sibling_graphs(edges):
    """Project file edges onto sibling modules: an edge u -> v becomes an edge between the
    two children of their deepest common ancestor that contain u and v. Returns
    {parent: {a: {b: first example}}}, so every level of the module tree is checked."""
    levels = defaultdict(lambda: defaultdict(dict))
    for u in sorted(edges):
        for v in sorted(edges[u]):
            n = next((k for k, (x, y) in enumerate(zip(u, v)) if x != y), min(len(u), len(v)))
            if n < len(u) and n < len(v):
                levels[u[:n]][u[:n + 1]].setdefault(v[:n + 1], edges[u][v][0])
    return levels


def cycles(graph):
    """Strongly connected components of more than one node (by reachability; graphs are small)."""
    nodes = sorted(set(graph) | {b for a in graph for b in graph[a]})
    reach = {}
    for v in nodes:
        seen, todo = set(), [v]
        while todo:
            new = set(graph.get(todo.pop(), ())) - seen
            seen |= new
            todo += new
        reach[v] = seen
    comps = {tuple(w for w in nodes if w in reach[v] and v in reach[w]) for v in nodes}
    return sorted(list(c) for c in comps if len(c) > 1)


def name(mod):
    return '::'.join(mod) or 'crate'


def main(argv):
    show_graph = '--graph' in argv
    args = [a for a in argv if a != '--graph']
    repo = Path(args[0]).resolve() if args else Path(__file__).resolve().parents[1]
    roots = ([repo / 'src'] if (repo / 'src' / 'lib.rs').is_file() else [])
    roots += sorted(p for p in repo.glob('crates/*/src') if p.is_dir())
    if not roots:
        print(f'{repo}: no src/lib.rs and no crates/*/src', file=sys.stderr)
        return 2
    cyclic, total = 0, 0
    for root in roots:
        label = root.relative_to(repo).as_posix()
        modules, edges = crate_graph(root, repo)
        total += len(modules)
        if show_graph:
            print(f'# {label} ({len(modules)} modules)')
            for a in sorted(edges):
                for b in sorted(edges[a]):
                    where, path = edges[a][b][0]
                    print(f'{name(a)} -> {name(b)}  ({len(edges[a][b])}x, e.g. {path} at {where})')
        for parent, graph in sorted(sibling_graphs(edges).items()):
            for comp in cycles(graph):
                cyclic += 1
                print(f'{label}: cycle among {len(comp)} modules in {name(parent)}: '
                      + ', '.join(map(name, comp)))
                for a in comp:
                    for b in sorted(b for b in graph[a] if b in comp):
                        where, path = graph[a][b]
                        print(f'    {name(a)} -> {name(b)}: {path} at {where}')
    if cyclic:
        print(f'{cyclic} module cycle(s); the layering inside a crate must be one-way', file=sys.stderr)
        return 1
    print(f'no module cycles in {len(roots)} crates ({total} modules)')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
