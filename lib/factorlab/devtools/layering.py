"""The layering check: no import cycles, and no import against the layer order.

``factorlab`` is built in tiers, lowest first; a module may import modules of its own
top-level package or module and of any *lower* tier, never of a higher tier and never of a
sibling on its own tier:

====  ==========================================  =============================================
tier  top-level packages and modules               what they are
====  ==========================================  =============================================
0     ``paths``, ``files``, ``seed``,              leaf helpers: where things live, atomic
      ``literature``, ``plots``, ``analysis``      writes and verified caches, the seed (the
                                                   only global state), numbers cited from
                                                   papers, the seaborn theme, small frame
                                                   helpers; they import nothing of factorlab
1     ``data``, ``layers``, ``results``            datasets and loaders; factorized layers; the
                                                   run store
2     ``models``, ``dft``                          networks (and the QM9 composition baseline
                                                   they refine); the DFT side of the demo
3     ``train``, ``mtl``                           training loops; multitask losses and metrics
4     ``experiments``                              every grid that writes run records
5     ``report``, ``predict``                      chapter logic (reads experiments' constants);
                                                   the ``predict`` command (network and DFT)
6     ``cli``, ``devtools``                        the command line; checks of the code base
7     ``__main__``                                 ``python -m factorlab``: calls the cli
====  ==========================================  =============================================

``report`` may import ``experiments`` (tier 5 over tier 4), never the reverse. The root
package ``factorlab/__init__.py`` imports nothing of factorlab.

An *import* is every ``import`` and ``from ... import`` statement anywhere in a module,
inside functions too (a lazy import is still a dependency), and every
``importlib.import_module("factorlab....")``; a module that calls ``import_module`` on a
computed name depends on every factorlab module it names in a string. ``from pkg import name``
depends on the module ``pkg.name`` when there is one, else on ``pkg`` (its ``__init__``).

Run ``python -m factorlab.devtools.layering`` (exit status 1 and one line per problem:
an upward or sideways import with its file and line, a module on no tier, or an import cycle
between modules or between top-level packages). ``tests/unit/test_layering.py`` runs it.
"""
from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

#: The tiers, lowest first (see the module docstring): top-level names under the package.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("paths", "files", "seed", "literature", "plots", "analysis", "clock"),
    ("data", "layers", "results"),
    ("models", "dft"),
    ("train", "mtl"),
    ("experiments",),
    ("report", "predict"),
    ("cli", "devtools"),
    ("__main__",),
)


@dataclass(frozen=True)
class Import:
    """Module ``src`` (in ``file``, at ``line``) imports module ``dst``."""

    src: str
    dst: str
    file: Path
    line: int

    def where(self, root: Path) -> str:
        try:
            name = self.file.relative_to(root.parent)
        except ValueError:
            name = self.file
        return f"{name}:{self.line}"


def discover(root: Path, package: str | None = None) -> dict[str, Path]:
    """Module name -> file of every ``.py`` file under the package folder ``root``
    (``pkg/__init__.py`` is module ``pkg``; ``package`` defaults to ``root``'s name)."""
    root = Path(root)
    package = package or root.name
    modules = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        if "__pycache__" in rel.parts:
            continue
        parts = [package, *rel.parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (dotted) is or lies in; None outside the package."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in modules:
            return cand
    return None


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or \
           (isinstance(func, ast.Name) and func.id == "import_module")


def module_imports(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of a package module by module ``name`` (file ``path``), in file order."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(target: str | None, node: ast.AST) -> None:
        dst = _resolve(target, modules) if target else None
        if dst is not None and dst != name:
            found.append(Import(name, dst, path, node.lineno))

    dynamic = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = name.split(".") if is_package else name.split(".")[:-1]
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in modules else base, node)
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                add(arg.value, node)
            else:
                dynamic = True
    if dynamic:  # import_module(<computed>): every module named in a string may be imported
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
                add(node.value, node)
    return sorted(set(found), key=lambda i: (i.line, i.dst))


def unit_of(module: str) -> str:
    """The top-level package or module that ``module`` belongs to (``""`` for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _tiers(layers: tuple[tuple[str, ...], ...]) -> dict[str, int]:
    tiers = {"": -1}  # the root package: below everything, so it may import nothing
    for k, names in enumerate(layers):
        for n in names:
            if n in tiers:
                raise ValueError(f"{n!r} is placed on two tiers of the layer order")
            tiers[n] = k
    return tiers


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    v = stack.pop()
                    on_stack.discard(v)
                    comp.append(v)
                    if v == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def _cycle_path(comp: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One cycle through ``comp[0]`` inside the component: [a, b, ..., a] (breadth first)."""
    members, start = set(comp), comp[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if nxt not in prev:
                    prev[nxt] = node
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError("a strongly connected component without a cycle")


def check(root: Path, package: str | None = None,
          layers: tuple[tuple[str, ...], ...] | None = None) -> list[str]:
    """Every layering problem of the package folder ``root``, one line each (empty: none).

    Lines name the importing file and line: ``upward import``, ``sideways import``, ``not on
    any tier`` (a top-level module missing from ``layers``), ``import cycle`` (between
    modules) and ``package cycle`` (between top-level packages). ``layers`` defaults to
    :data:`LAYERS`.
    """
    root = Path(root)
    modules = discover(root, package)
    tiers = _tiers(LAYERS if layers is None else layers)
    edges = [imp for name, path in modules.items() for imp in module_imports(name, path, modules)]
    problems: list[str] = []
    unplaced = sorted({unit_of(m) for m in modules} - set(tiers))
    problems += [f"{package or root.name}.{u}: not on any tier of the layer order (add it to LAYERS in "
                 f"factorlab/devtools/layering.py and to the order in factorlab/__init__.py)" for u in unplaced]
    for imp in edges:
        a, b = unit_of(imp.src), unit_of(imp.dst)
        if a == b or a not in tiers or b not in tiers:
            continue
        if tiers[b] > tiers[a]:
            problems.append(f"{imp.where(root)}: upward import: {imp.src} (tier {tiers[a]}, {a or 'root'}) "
                            f"imports {imp.dst} (tier {tiers[b]}, {b})")
        elif tiers[b] == tiers[a]:
            problems.append(f"{imp.where(root)}: sideways import: {imp.src} imports {imp.dst}, both on tier "
                            f"{tiers[a]} ({a}, {b}: siblings never import each other)")
    # cycles between modules, then between top-level packages
    first: dict[tuple[str, str], Import] = {}
    graph: dict[str, set[str]] = {}
    for imp in edges:
        graph.setdefault(imp.src, set()).add(imp.dst)
        first.setdefault((imp.src, imp.dst), imp)
    for comp in _sccs(graph):
        path = _cycle_path(comp, graph)
        steps = [first[(u, v)].where(root) for u, v in zip(path, path[1:])]
        problems.append(f"import cycle: {' -> '.join(path)} ({', '.join(steps)})")
    ugraph: dict[str, set[str]] = {}
    ufirst: dict[tuple[str, str], Import] = {}
    for imp in edges:
        a, b = unit_of(imp.src), unit_of(imp.dst)
        if a != b:
            ugraph.setdefault(a, set()).add(b)
            ufirst.setdefault((a, b), imp)
    for comp in _sccs(ugraph):
        path = _cycle_path(comp, ugraph)
        steps = [f"{ufirst[(u, v)].src} -> {ufirst[(u, v)].dst} at {ufirst[(u, v)].where(root)}"
                 for u, v in zip(path, path[1:])]
        problems.append(f"package cycle: {' -> '.join(p or 'root' for p in path)} ({'; '.join(steps)})")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Print the problems of a package (default: the installed ``factorlab``); 1 when any."""
    parser = argparse.ArgumentParser(prog="python -m factorlab.devtools.layering",
                                     description="Fail on import cycles and on imports against the layer order.")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the package folder to check (default: factorlab's own)")
    args = parser.parse_args(argv)
    if not (args.root / "__init__.py").is_file():
        print(f"error: {args.root} is not a package folder (no __init__.py)", file=sys.stderr)
        return 2
    problems = check(args.root)
    for line in problems:
        print(line)
    n = len(discover(args.root))
    print(f"layering: {n} modules, {len(problems) or 'no'} problem{'s' if len(problems) != 1 else ''}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
