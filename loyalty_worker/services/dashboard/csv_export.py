"""A list as CSV, streamed: the rows of the current filter for a spreadsheet, where no cell runs
as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

from loyalty_worker.services.dashboard.page import PageModel

CSV_CHUNK_ROWS = 500


def csv_chunks(rows: Iterable[PageModel], columns: Sequence[str]) -> Iterator[str]:
    """Rows as CSV (``columns``: the rows' field names as the JSON spells them), a header
    first, in chunks of ``CSV_CHUNK_ROWS`` rows; a cell that a spreadsheet would run as a
    formula is quoted with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        fields = row.model_dump(by_alias=True)
        writer.writerow([_cell(fields.get(column)) for column in columns])
        if count % CSV_CHUNK_ROWS == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def to_csv(rows: Iterable[PageModel], columns: Sequence[str]) -> str:
    """Rows as CSV, a header first (see ``csv_chunks``)."""
    return "".join(csv_chunks(rows, columns))


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@") and not _is_number(text):
        text = "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
