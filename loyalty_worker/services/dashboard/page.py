"""What every page shares: the models' base (Python names here, camelCase on the wire), the
paging fields of a list, and the error for what the org does not have."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class NotFound(LookupError):
    """A customer, run or task the org does not have; its text is the answer's detail."""

    def __init__(self, what: str, key: int | str) -> None:
        super().__init__(f"unknown {what} {key!r}")


class PageModel(BaseModel):
    """What a page shows and its JSON route answers (the OpenAPI schema describes it)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class Adjustment(PageModel):
    """What ``autoAdjust`` recorded at a change: the balance it would move, never applied to
    Alpine IQ."""

    source: str = Field(description="The source of truth it follows: alpine_iq or calculated.")
    from_: int = Field(alias="from", description="The balance before.")
    to: int = Field(description="The balance it would become.")


class ListPage(PageModel):
    """One page of a long list, and the cursors of the pages around it."""

    org_id: str
    total: int = Field(description="Rows of the whole list (its filter), by aggregation counts.")
    page: int = Field(description="This page's number, from 1.")
    next: str | None = Field(description="The next page's cursor (`?cursor=`); null: the last.")
    prev: str | None = Field(
        description="The previous page's cursor; null on the first page, or past the 30 pages "
        "a cursor keeps the way back (the first page is linked apart)."
    )
    page_size: int
    pages: int = Field(description="How many pages the list has at this page size.")
