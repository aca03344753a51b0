"""The package stays within the limits a new maintainer can follow (``make check`` runs this).

No module over 500 lines, no function body over 60 lines, no function over 8 parameters (``self``
and ``cls`` not counted), and fewer than 40 untyped string-keyed mappings in annotations across
``loyalty_worker/``: ``dict[str, Any]``, ``Mapping[str, Any]`` and their ``object`` twins, and
``**kwargs: Any``, each counted where it is written and, through a type alias, where the alias
is used. They belong at the wire (Redis hashes, Firestore documents, Celery arguments, JSON),
where the adapters turn them into typed values.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "loyalty_worker"
MAX_MODULE_LINES = 500
MAX_BODY_LINES = 60
MAX_PARAMETERS = 8
MAX_UNTYPED_MAPPINGS = 39

UNTYPED = re.compile(r"\b(?:dict|Mapping|MutableMapping)\[str, (?:Any|object)\]")
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
Function = ast.FunctionDef | ast.AsyncFunctionDef


def modules() -> Iterator[tuple[Path, str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts:  # npm packages' own Python files
            continue
        source = path.read_text()
        yield path.relative_to(PACKAGE.parent), source, ast.parse(source)


def functions(tree: ast.Module) -> Iterator[Function]:
    yield from (node for node in ast.walk(tree) if isinstance(node, FUNCTIONS))


def body_lines(function: Function) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = function.body
    first = body[0]
    docstring = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    start = body[1] if docstring and len(body) > 1 else first
    end = function.end_lineno or function.lineno
    return end - start.lineno + 1


def parameters(function: Function) -> int:
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    count = len(positional) + len(args.kwonlyargs) + (args.vararg is not None)
    count += args.kwarg is not None
    if positional and positional[0].arg in ("self", "cls"):
        count -= 1
    return count


def untyped_mappings(sources: list[tuple[Path, str, ast.Module]]) -> list[str]:
    """Where an untyped mapping is written: in an annotation, or an alias of one where used."""
    aliases: set[str] = set()
    for _, source, tree in sources:
        for statement in tree.body:
            value = getattr(statement, "value", None)
            target: ast.expr | None = None
            if isinstance(statement, ast.AnnAssign):
                target = statement.target
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
            if isinstance(target, ast.Name) and value is not None:
                text = ast.get_source_segment(source, value) or ""
                if UNTYPED.fullmatch(text.strip()):
                    aliases.add(target.id)
    pattern = UNTYPED
    if aliases:
        names = "|".join(sorted(aliases))
        pattern = re.compile(rf"{UNTYPED.pattern}|\b(?:{names})\b")
    found = []
    for path, source, tree in sources:
        for node in ast.walk(tree):
            annotations: list[ast.expr | None] = []
            if isinstance(node, FUNCTIONS):
                args = node.args
                every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
                annotations += [arg.annotation for arg in every]
                annotations.append(node.returns)
                if args.vararg is not None:
                    annotations.append(args.vararg.annotation)
                if args.kwarg is not None and args.kwarg.annotation is not None:
                    kwarg = ast.get_source_segment(source, args.kwarg.annotation) or ""
                    if kwarg in ("Any", "object"):
                        found.append(f"{path}:{node.lineno} **{args.kwarg.arg}: {kwarg}")
            elif isinstance(node, ast.AnnAssign):
                annotations.append(node.annotation)
            for annotation in annotations:
                if annotation is None:
                    continue
                text = ast.get_source_segment(source, annotation) or ""
                found += [
                    f"{path}:{annotation.lineno} {m.group(0)}" for m in pattern.finditer(text)
                ]
    return found


def test_no_module_is_over_the_line_limit() -> None:
    long = [
        f"{path}: {source.count(chr(10))} lines"
        for path, source, _ in modules()
        if source.count("\n") > MAX_MODULE_LINES
    ]
    assert long == []


@pytest.mark.parametrize(
    ("measure", "limit"), [(body_lines, MAX_BODY_LINES), (parameters, MAX_PARAMETERS)]
)
def test_no_function_is_over_the_limit(measure: Callable[[Function], int], limit: int) -> None:
    over = [
        f"{path}:{function.lineno} {function.name}: {measure(function)}"
        for path, _, tree in modules()
        for function in functions(tree)
        if measure(function) > limit
    ]
    assert over == []


def test_untyped_mappings_stay_at_the_wire() -> None:
    found = untyped_mappings(list(modules()))
    assert len(found) <= MAX_UNTYPED_MAPPINGS, "\n".join(found)


def test_the_counts_see_what_they_count() -> None:
    """The counters themselves: an alias, a kwarg and a parameter crowd are each found."""
    source = (
        "from typing import Any\n"
        "Doc = dict[str, Any]\n"
        "def f(a: Doc, b: Mapping[str, object], *, c: int, **rest: Any) -> dict[str, Any]:\n"
        "    return {}\n"
        "def g(self, a, b, c, d, e, f, g, h, i): ...\n"
    )
    tree = ast.parse(source)
    found = untyped_mappings([(Path("x.py"), source, tree)])
    assert len(found) == 4, found
    g = next(f for f in functions(tree) if f.name == "g")
    assert parameters(g) == 9
