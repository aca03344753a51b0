"""Keyset cursors: where a page of a long list starts, as an opaque token for the URL.

No page reads the rows before it: a list is an ordered query started after the sort key of the
last row shown, so a later page costs what the first one does.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

# A cursor keeps the way back this many pages; its keys have this many values per sort.
MAX_TRAIL = 30
MAX_PAGE = 1_000_000
KEY_LENGTH = {"size": 2, "age": 2, "id": 1, "points": 2, "recent": 2}


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a page of a list starts (keyset pagination). ``trail`` holds the sort keys of the
    last row of the pages before it, the latest last: the page starts after ``trail[-1]``, and
    the earlier ones lead back (the last ``MAX_TRAIL`` are kept; past them only the first page
    is linked)."""

    sort: str
    page: int = 1
    trail: tuple[tuple[int, ...], ...] = ()

    @property
    def after(self) -> tuple[int, ...] | None:
        return self.trail[-1] if self.trail else None

    def next(self, last: tuple[int, ...]) -> PageCursor:
        return PageCursor(self.sort, self.page + 1, (*self.trail, last)[-MAX_TRAIL:])

    def prev(self) -> PageCursor | None:
        if self.page <= 1:
            return None
        if self.page == 2:
            return PageCursor(self.sort)
        if len(self.trail) < 2:  # the way back was longer than the trail kept
            return None
        return PageCursor(self.sort, self.page - 1, self.trail[:-1])

    def encode(self) -> str:
        body = json.dumps(
            [self.sort, self.page, [list(key) for key in self.trail]], separators=(",", ":")
        )
        return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: str) -> PageCursor:
        """The cursor of ``token``; ValueError for a token that is not one of ``sort``'s."""
        try:
            padded = token + "=" * (-len(token) % 4)
            found = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (ValueError, UnicodeError, RecursionError) as exc:  # "[[[[…" nests too deep
            raise ValueError("not a page cursor") from exc
        if not (isinstance(found, list) and len(found) == 3 and found[0] == sort):
            raise ValueError("not a page cursor of this list")
        page, trail = found[1], found[2]
        if not (_is_int(page) and 1 <= page <= MAX_PAGE and isinstance(trail, list)):
            raise ValueError("not a page cursor")
        if len(trail) > MAX_TRAIL or len(trail) > page - 1 or (page > 1 and not trail):
            raise ValueError("not a page cursor")
        keys = []
        for key in trail:
            if not (
                isinstance(key, list)
                and len(key) == KEY_LENGTH[sort]
                and all(_is_key_value(value) for value in key)
            ):
                raise ValueError("not a page cursor")
            keys.append(tuple(key))
        return cls(sort, page, tuple(keys))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_key_value(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


@dataclass(frozen=True, slots=True)
class PageLinks:
    """A page's number, and the cursors of the pages around it (None: no such page)."""

    page: int
    next: str | None
    prev: str | None


def page_links(cursor: PageCursor | None, sort: str, last: tuple[int, ...] | None) -> PageLinks:
    """The links of a page whose last row has the sort key ``last`` (None: the list ends on
    this page)."""
    here = cursor or PageCursor(sort)
    prev = here.prev()
    return PageLinks(
        page=here.page,
        next=here.next(last).encode() if last is not None else None,
        prev=prev.encode() if prev is not None else None,
    )
