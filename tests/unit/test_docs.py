"""The documentation holds together: links resolve, and settings.md lists what the code reads.

- Every relative link and image in README.md, docs/*.md and benchmarks/README.md (inline or a
  reference definition, outside code) names a file of the repository, and its ``#anchor``, if
  any, names a heading of the target (GitHub's slugs: lower case, punctuation dropped, spaces to
  hyphens, ``-1``, ``-2``... for repeats). A same-page ``#anchor`` is checked against the page.
- docs/settings.md lists, in the tables under its "Environment variables" heading (first column,
  the variable in backticks), exactly the variables the package reads: the fields of every
  ``BaseSettings`` class in ``loyalty_worker/`` (env prefix + field name, upper case; an alias
  instead when a field has one), plus every variable read directly, found by regular expression
  over ``loyalty_worker/`` and ``celeryconfig.py``: ``os.environ.get(X)``, ``os.environ[X]``
  (not assigned to), ``os.getenv(X)`` and ``X in os.environ``, where X is a string literal or a
  module-level constant such as ``MARKER_VAR = "LOYALTY_PARENT_RUN"``.
- Its "Variables of the tests and benchmarks" table lists the ``LOYALTY_*`` variables that only
  ``tests/`` and ``benchmarks/`` read, and nothing else.

The self-checks at the end run each parser over a small sample, so a parser that found nothing
would fail here rather than pass every page.
"""

from __future__ import annotations

import ast
import importlib
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "loyalty_worker"
SETTINGS_PAGE = ROOT / "docs" / "settings.md"
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks/README.md")
PACKAGE_SECTION = "Environment variables"
TESTS_SECTION = "Variables of the tests and benchmarks"

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
LINK_TEXT = re.compile(r"!?\[((?:[^\]\\]|\\.)*)\]\([^)]*\)")
SCHEME = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")
TABLE_VARIABLE = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|")

# What a variable is named by in source: a string literal, or a (dotted) constant's name.
_NAME = r"""(?:"([A-Z][A-Z0-9_]*)"|'([A-Z][A-Z0-9_]*)'|([A-Za-z_][\w.]*))"""
READS = (
    re.compile(rf"\bos\.environ\.get\(\s*{_NAME}"),
    re.compile(rf"\bos\.getenv\(\s*{_NAME}"),
    re.compile(rf"\bos\.environ\[\s*{_NAME}\s*\](?!\s*=[^=])"),
    re.compile(rf"{_NAME}\s+(?:not\s+)?in\s+os\.environ\b"),
)
CONSTANT = re.compile(
    r"""^([A-Z][A-Z0-9_]*)\s*(?::[^=]+)?=\s*["']([A-Z][A-Z0-9_]*)["']\s*(?:#.*)?$""", re.M
)


# --- markdown -------------------------------------------------------------------------------


def prose_lines(text: str, *, blank_code: bool = True) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` outside fenced code blocks; inline code spans blanked unless
    ``blank_code`` is false (a settings table's variable is inline code)."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        opened = FENCE.match(line)
        if opened:
            mark = opened.group(1)[0]
            fence = mark if fence is None else (None if mark == fence else fence)
        elif fence is None:
            yield (
                number,
                CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line) if blank_code else line,
            )


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text, lower case, punctuation gone, spaces hyphens."""
    text = LINK_TEXT.sub(r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor in a page, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(text, blank_code=False):
        heading = HEADING.match(line)
        if heading:
            slug = github_slug(heading.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, target)`` of every link and image outside code, external ones left out."""
    for number, line in prose_lines(text):
        targets = [m.group(1) for m in INLINE_LINK.finditer(line)]
        reference = REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
        for target in targets:
            if target and not SCHEME.match(target):
                yield number, target


def broken_links(page: Path, text: str, root: Path) -> list[str]:
    """One line per link of ``page`` that names no file, or no heading of its target."""
    problems = []
    for number, target in links(text):
        where = f"{page.relative_to(root)}:{number}: {target}"
        path_part, _, fragment = target.partition("#")
        if not path_part:  # an anchor of this very page
            destination, target_text = page, text
        else:
            destination = (page.parent / urllib.parse.unquote(path_part)).resolve()
            if not destination.is_relative_to(root.resolve()):
                problems.append(f"{where}: outside the repository")
                continue
            if not destination.exists():
                problems.append(f"{where}: no such file")
                continue
            target_text = destination.read_text() if destination.suffix == ".md" else ""
        if not fragment:
            continue
        if destination.suffix != ".md":
            problems.append(f"{where}: an anchor into a file that is not markdown")
        elif urllib.parse.unquote(fragment) not in anchors(target_text):
            problems.append(f"{where}: no heading with that anchor")
    return problems


# --- environment variables ------------------------------------------------------------------


def settings_variables(cls: type[BaseSettings]) -> set[str]:
    """The variables a pydantic-settings class reads: prefix + field name, or the field's alias."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        if alias is None:
            names.add(f"{prefix}{field_name}".upper())
            continue
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            first = choice.path[0] if isinstance(choice, AliasPath) else choice
            names.add(str(first).upper())
    return names


def settings_classes(package: Path) -> Iterator[type[BaseSettings]]:
    """Every module-level class in the package whose bases name ``BaseSettings``, imported."""
    for path in sorted(package.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {ast.unparse(base).rpartition(".")[2] for base in node.bases}
            if "BaseSettings" in bases:
                dotted = ".".join(path.relative_to(package.parent).with_suffix("").parts)
                cls = getattr(importlib.import_module(dotted), node.name)
                assert issubclass(cls, BaseSettings), f"{dotted}.{node.name}"
                yield cls


def direct_reads(sources: Iterable[str]) -> tuple[set[str], set[str]]:
    """``(variables read, names that could not be resolved)`` over some modules' sources."""
    sources = list(sources)
    constants = {name: value for source in sources for name, value in CONSTANT.findall(source)}
    found: set[str] = set()
    unresolved: set[str] = set()
    for source in sources:
        for pattern in READS:
            for double, single, identifier in pattern.findall(source):
                if double or single:
                    found.add(double or single)
                    continue
                name = identifier.rpartition(".")[2]
                if name in constants:
                    found.add(constants[name])
                else:
                    unresolved.add(identifier)
    return found, unresolved


def python_sources(*roots: Path, skip: Path | None = None) -> Iterator[str]:
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in paths:
            if "node_modules" not in path.parts and path != skip:
                yield path.read_text()


def documented(text: str) -> dict[str, list[str]]:
    """The variables in the first column of the page's tables, by the ``##`` section they are in."""
    sections: dict[str, list[str]] = {}
    section = ""
    for _, line in prose_lines(text, blank_code=False):
        heading = HEADING.match(line)
        if heading and len(heading.group(1)) == 2:
            section = heading.group(2)
        row = TABLE_VARIABLE.match(line)
        if row:
            sections.setdefault(section, []).append(row.group(1))
    return sections


def mismatches(listed: list[str], read: set[str], what: str) -> list[str]:
    """What a table misses, what it lists that is not read, and what it lists twice."""
    twice = {name for name in listed if listed.count(name) > 1}
    return [
        *(f"{name}: read by {what} but not documented" for name in sorted(read - set(listed))),
        *(f"{name}: documented but not read by {what}" for name in sorted(set(listed) - read)),
        *(f"{name}: documented twice" for name in sorted(twice)),
    ]


def package_variables() -> set[str]:
    direct, unresolved = direct_reads(python_sources(PACKAGE, ROOT / "celeryconfig.py"))
    assert not unresolved, f"environment reads through names this test cannot resolve: {unresolved}"
    classes = set[str]().union(*(settings_variables(cls) for cls in settings_classes(PACKAGE)))
    return direct | classes


# --- the checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page, page.read_text(), ROOT) == []


def test_settings_page_lists_exactly_what_the_package_reads() -> None:
    read = package_variables()
    # The derivation must see both settings classes and the direct reads, or it proves nothing.
    assert {"LOYALTY_REDIS_URL", "LOYALTY_API_TOKENS", "FIRESTORE_EMULATOR_HOST"} <= read
    assert "LOYALTY_PARENT_RUN" in read
    listed = documented(SETTINGS_PAGE.read_text()).get(PACKAGE_SECTION, [])
    assert mismatches(listed, read, "loyalty_worker") == []


def test_settings_page_lists_the_variables_only_tests_and_benchmarks_read() -> None:
    tests_read, _ = direct_reads(
        python_sources(ROOT / "tests", ROOT / "benchmarks", skip=Path(__file__).resolve())
    )
    only_tests = {name for name in tests_read - package_variables() if name.startswith("LOYALTY_")}
    listed = documented(SETTINGS_PAGE.read_text()).get(TESTS_SECTION, [])
    assert mismatches(listed, only_tests, "tests/ or benchmarks/ alone") == []


# --- the parsers, on samples ----------------------------------------------------------------

SAMPLE_SOURCE = """
import os
MARKER = "SAMPLE_MARKER"
a = os.environ.get("SAMPLE_GET", "x")
b = os.environ['SAMPLE_SUBSCRIPT']
c = os.getenv("SAMPLE_GETENV")
d = os.environ.get(MARKER)
e = "SAMPLE_IN" in os.environ
f = os.environ.get(helpers.MARKER)
os.environ["SAMPLE_WRITTEN"] = "1"
g = os.environ.get(unknown_name)
"""

SAMPLE_PAGE = """# Title

## Environment variables

### Some

| variable | default | meaning |
|---|---|---|
| `SAMPLE_GET` | unset | read |
| `SAMPLE_STALE` | unset | no longer read |

## Other

| `SAMPLE_ELSEWHERE` | x | y |

```
| `SAMPLE_IN_CODE` | x | y |
```
"""


def test_direct_reads_are_found_in_every_form_and_writes_are_not() -> None:
    found, unresolved = direct_reads([SAMPLE_SOURCE])
    assert found == {
        "SAMPLE_GET",
        "SAMPLE_SUBSCRIPT",
        "SAMPLE_GETENV",
        "SAMPLE_MARKER",
        "SAMPLE_IN",
    }
    assert unresolved == {"unknown_name"}


def test_the_table_parser_catches_a_missing_and_a_stale_variable() -> None:
    sections = documented(SAMPLE_PAGE)
    assert sections == {
        PACKAGE_SECTION: ["SAMPLE_GET", "SAMPLE_STALE"],
        "Other": ["SAMPLE_ELSEWHERE"],
    }
    assert mismatches(sections[PACKAGE_SECTION], {"SAMPLE_GET", "SAMPLE_NEW"}, "the sample") == [
        "SAMPLE_NEW: read by the sample but not documented",
        "SAMPLE_STALE: documented but not read by the sample",
    ]


def test_settings_classes_give_prefixed_names_and_honour_aliases() -> None:
    from pydantic import Field
    from pydantic_settings import SettingsConfigDict

    class Sample(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="SAMPLE_")

        plain: int = 1
        aliased: int = Field(default=1, validation_alias="OTHER_NAME")
        either: int = Field(default=1, validation_alias=AliasChoices("FIRST", "second"))

    assert settings_variables(Sample) == {"SAMPLE_PLAIN", "OTHER_NAME", "FIRST", "SECOND"}


def test_slugs_follow_github() -> None:
    assert github_slug("The loyalty dashboard (`/dashboard`)") == "the-loyalty-dashboard-dashboard"
    assert github_slug("Starting a run: `loyalty.sync_org`") == "starting-a-run-loyaltysync_org"
    assert github_slug("An org's loyalty settings") == "an-orgs-loyalty-settings"
    assert (
        github_slug("Scale-out: 1 and 2 worker processes (10,000 customers)")
        == "scale-out-1-and-2-worker-processes-10000-customers"
    )
    assert github_slug("See [the API](api.md)") == "see-the-api"
    assert anchors("# A\n## A\n```\n# B\n```\n## C") == {"a", "a-1", "c"}


def test_broken_links_are_reported_and_code_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "target.md").write_text("# Target\n\n## Some section\n")
    page = tmp_path / "README.md"
    text = "\n".join(
        [
            "# Page",
            "[fine](docs/target.md#some-section) and ![img](docs/target.md)",
            "[missing](docs/nothing.md) [bad anchor](docs/target.md#no-such)",
            "[self](#page) [self missing](#nowhere) [web](https://example.com/x.md)",
            "`[in code](docs/nothing.md)`",
            "```",
            "[in a fence](docs/nothing.md)",
            "```",
            "[ref]: docs/gone.md",
        ]
    )
    assert broken_links(page, text, tmp_path) == [
        "README.md:3: docs/nothing.md: no such file",
        "README.md:3: docs/target.md#no-such: no heading with that anchor",
        "README.md:4: #nowhere: no heading with that anchor",
        "README.md:9: docs/gone.md: no such file",
    ]
