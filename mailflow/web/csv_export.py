"""The desk's CSV downloads: streamed row by row, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain

from flask import Response, stream_with_context

# A cell starting with one of these is read as a formula by spreadsheets (CSV injection): a resident's
# subject "=HYPERLINK(…)" must arrive as text. A leading apostrophe makes it so, and shows what it was.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_lines(header: Sequence[object], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    yield "\ufeff"  # a byte-order mark: spreadsheet programs then read the names' accents right
    for row in chain([header], rows):
        writer.writerow([neutralised(value) for value in row])
        yield out.getvalue()
        out.seek(0)
        out.truncate()


def csv_download(filename: str, header: Sequence[object], rows: Iterable[Sequence[object]]) -> Response:
    """``rows`` as a CSV attachment, written as they are read: pass a generator that opens its
    database session itself, and the request stays open (its language, its user) while it runs."""
    return Response(
        stream_with_context(csv_lines(header, rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )
