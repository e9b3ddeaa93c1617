"""The library files a stage depends on, derived from its imports.

Snakemake does not track imported modules, so each rule lists the ``nextlat`` files its
stage runs as inputs: editing one reruns exactly the rules whose stage imports it. Rather
than keep hand lists that drift, :func:`module_files` follows the ``import`` statements
(module level and inside functions) of the stage's entry modules, within ``nextlat`` only,
and adds every package ``__init__.py`` that importing a module executes.

Imports done by name at run time (``importlib``: the objective and benchmark registries)
are not followed on purpose; callers add the module a run actually uses (its objective's
file, its benchmark's stage module). Non-Python files a module reads (a schema, vendored
JavaScript) are added by the caller.

Why not ``modulefinder``: it resolves every third-party import too (torch, pandas), which
takes seconds at every plan, and it cannot be limited to one package.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent  # the nextlat package
PACKAGE = ROOT.name


def _file_of(module: str) -> Path | None:
    """``nextlat.a.b`` -> its file (module or package ``__init__``); None if not ours."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=None)
def _imports(path: Path) -> frozenset[str]:
    """Absolute names of every module ``path`` imports (``from x import y`` gives x and x.y)."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return frozenset(found)


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@functools.lru_cache(maxsize=None)
def module_files(*modules: str) -> tuple[str, ...]:
    """Sorted paths of ``modules`` and everything in ``nextlat`` they import, transitively."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        path = _file_of(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(_parents(name))
        todo.extend(_imports(path))
    missing = [m for m in modules if _file_of(m) is None]
    if missing:
        raise ValueError(f"no such module in {PACKAGE}: {missing}")
    return tuple(sorted(str(p) for p in seen))


def objective_module(method: str) -> str:
    """Where the objective named ``method`` is defined: ``nextlat/objectives/<method>.py``
    (the registry's convention, checked by the objective tests)."""
    return f"{PACKAGE}.objectives.{method}"
