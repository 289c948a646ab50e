"""The shared machinery of the dataset importers: reports, row errors, CSV scanning, field parsers.

An importer reads every file twice. The first pass validates every row and collects the ids the
second pass needs; nothing is written unless the first pass found no error (or ``skip_bad`` is set,
in which case bad rows are reported and left out). The second pass re-reads the files and writes
in batches inside one transaction, so a failed import changes nothing.
"""
from __future__ import annotations

import csv
import hashlib
import json
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from tqdm import tqdm

MAX_REPORTED_ERRORS = 20
TRUE_VALUES = {"1", "true", "t", "yes", "y"}
FALSE_VALUES = {"0", "false", "f", "no", "n", ""}


class RowInvalid(ValueError):
    """Raised by a row parser; the message is the reason shown to the user."""


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class DatasetImportError(Exception):
    """The dataset cannot be imported; nothing was written. ``errors`` lists the bad rows found."""

    def __init__(self, message: str, errors: list[RowError] | None = None):
        self.errors = errors or []
        lines = [message, *(f"  {e}" for e in self.errors)]
        super().__init__("\n".join(lines))


@dataclass
class FileReport:
    name: str
    read: int = 0
    created: int = 0
    present: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.read} rows read, {self.created} created, "
            f"{self.present} already present, {self.skipped} skipped"
        )


@dataclass
class ImportReport:
    format: str
    directory: str
    files: dict[str, FileReport] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    elapsed_s: float = 0.0

    def file(self, name: str) -> FileReport:
        return self.files.setdefault(name, FileReport(name))

    def lines(self) -> list[str]:
        out = [str(report) for report in self.files.values()]
        out += [f"skipped {error}" for error in self.errors]
        out.append(f"elapsed: {self.elapsed_s:.1f} s")
        return out


@dataclass(frozen=True)
class FileSpec:
    name: str
    required_columns: tuple[str, ...]
    parse: Callable[[dict[str, str]], Any]
    required: bool = True


class Scanner:
    """Reads the CSV files of one import, recording bad rows in the report."""

    def __init__(self, directory: Path, report: ImportReport, *, skip_bad: bool, progress: bool):
        self.directory = directory
        self.report = report
        self.skip_bad = skip_bad
        self.progress = progress and sys.stderr.isatty()
        self.row_counts: dict[str, int] = {}

    def exists(self, spec: FileSpec) -> bool:
        path = self.directory / spec.name
        if not path.is_file() and spec.required:
            raise DatasetImportError(f"{path}: required file is missing.")
        return path.is_file()

    def _rows(self, spec: FileSpec, desc: str) -> Iterator[tuple[int, dict[str, str]]]:
        with open(self.directory / spec.name, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in spec.required_columns if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetImportError(f"{spec.name}:1: missing column(s) {', '.join(missing)}.")
            bar = tqdm(
                total=self.row_counts.get(spec.name), desc=desc, unit=" rows", file=sys.stderr,
                disable=not self.progress, mininterval=0.5,
            )
            with bar:
                for row in reader:
                    bar.update()
                    yield reader.line_num, row

    def validate(self, spec: FileSpec) -> Iterator[tuple[int, Any]]:
        """First pass: yield (line, parsed) for good rows; record (or raise on) bad ones."""
        count = 0
        for line, row in self._rows(spec, f"validate {spec.name}"):
            count += 1
            try:
                parsed = _parse(spec, row)
            except RowInvalid as exc:
                self.report.errors.append(RowError(spec.name, line, str(exc)))
                if not self.skip_bad and len(self.report.errors) >= MAX_REPORTED_ERRORS:
                    self.fail()
                continue
            yield line, parsed
        self.row_counts[spec.name] = count

    def fail(self) -> None:
        if self.report.errors:
            raise DatasetImportError(
                "The dataset has malformed rows; nothing was imported (use --skip-bad to import the good rows).",
                self.report.errors,
            )

    def read(self, spec: FileSpec) -> Iterator[Any]:
        """Second pass: yield the parsed good rows and count them in the file's report."""
        file_report = self.report.file(spec.name)
        for _line, row in self._rows(spec, f"import {spec.name}"):
            file_report.read += 1
            try:
                parsed = _parse(spec, row)
            except RowInvalid:
                file_report.skipped += 1  # already reported by the first pass
                continue
            yield parsed


def _parse(spec: FileSpec, row: dict[str, str]) -> Any:
    if None in row:
        raise RowInvalid(f"{len(row) - 1 + len(row[None])} fields, the header has {len(row) - 1}.")
    return spec.parse(row)


# --- field parsers -------------------------------------------------------------------------------


def text(row: dict[str, str], column: str, *, required: bool = False, max_length: int | None = None) -> str:
    value = (row.get(column) or "").strip()
    if required and not value:
        raise RowInvalid(f"'{column}' is required.")
    if max_length is not None and len(value) > max_length:
        raise RowInvalid(f"'{column}' is longer than {max_length} characters.")
    return value


def timestamp_iso(value: str, column: str = "timestamp") -> datetime:
    """An ISO 8601 date or date-time (naive values are taken as UTC), or unix epoch seconds."""
    stripped = value.strip()
    if stripped.replace(".", "", 1).isdigit():  # exports often carry epoch seconds
        return timestamp_unix(stripped.split(".")[0], column)
    try:
        moment = datetime.fromisoformat(stripped)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise RowInvalid(f"'{column}' is not an ISO 8601 date-time: {value!r}.") from None
    return _in_range(moment, column, value)


def timestamp_unix(value: str, column: str = "timestamp") -> datetime:
    try:
        moment = datetime.fromtimestamp(int(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise RowInvalid(f"'{column}' is not a unix timestamp: {value!r}.") from None
    return _in_range(moment, column, value)


def _in_range(moment: datetime, column: str, raw: str) -> datetime:
    from crm.api.validation import TIMESTAMP_OUT_OF_RANGE, timestamp_in_range

    if not timestamp_in_range(moment):
        raise RowInvalid(f"'{column}' {raw!r}: {TIMESTAMP_OUT_OF_RANGE}")
    return moment


def key(row: dict[str, str], column: str) -> str:
    """A customer or item id: required, at most 191 characters, safe in a URL (no '/', '?', ...)."""
    from crm.api.validation import UNSAFE_KEY_MESSAGE, key_is_safe

    value = text(row, column, required=True, max_length=191)
    if not key_is_safe(value):
        raise RowInvalid(f"'{column}' {value!r}: {UNSAFE_KEY_MESSAGE}")
    return value


def number(value: str, column: str, *, minimum: float | None = None) -> float | None:
    if not value.strip():
        return None
    try:
        result = float(value)
    except ValueError:
        raise RowInvalid(f"'{column}' is not a number: {value!r}.") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise RowInvalid(f"'{column}' is not a finite number: {value!r}.")
    if minimum is not None and result < minimum:
        raise RowInvalid(f"'{column}' must be >= {minimum:g}, got {value!r}.")
    return result


def positive_int(value: str, column: str, *, default: int) -> int:
    if not value.strip():
        return default
    try:
        result = int(value)
    except ValueError:
        # "2.0" is how data-frame exports write an integer column that had gaps: accept whole numbers.
        try:
            as_float = float(value)
        except ValueError:
            raise RowInvalid(f"'{column}' must be an integer >= 1, got {value!r}.") from None
        if not as_float.is_integer():
            raise RowInvalid(f"'{column}' must be an integer >= 1, got {value!r}.") from None
        result = int(as_float)
    if result < 1:
        raise RowInvalid(f"'{column}' must be an integer >= 1, got {value!r}.")
    return result


def price(value: str, column: str = "price") -> Decimal | None:
    if not value.strip():
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise RowInvalid(f"'{column}' is not a number: {value!r}.") from None
    if not amount.is_finite() or amount < 0:
        raise RowInvalid(f"'{column}' must be a number >= 0, got {value!r}.")
    amount = amount.quantize(Decimal("0.01"))
    if amount >= Decimal("1e10"):
        raise RowInvalid(f"'{column}' is too large: {value!r}.")
    return amount


def boolean(value: str, column: str, *, default: bool) -> bool:
    lowered = value.strip().lower()
    if not lowered:
        return default
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES:
        return False
    raise RowInvalid(f"'{column}' must be true or false, got {value!r}.")


def json_object(value: str, column: str) -> dict:
    if not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise RowInvalid(f"'{column}' is not valid JSON ({exc.msg}).") from None
    if not isinstance(parsed, dict):
        raise RowInvalid(f"'{column}' must be a JSON object, got {type(parsed).__name__}.")
    return parsed


def string_list(value: str, column: str) -> list[str]:
    """A JSON list of strings, or strings separated by '|'."""
    value = value.strip()
    if not value:
        return []
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowInvalid(f"'{column}' is not a valid JSON list ({exc.msg}).") from None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise RowInvalid(f"'{column}' must be a list of strings.")
        return parsed
    return [part.strip() for part in value.split("|") if part.strip()]


_email = EmailValidator()
_url = URLValidator(schemes=["http", "https"])


def _validated(value: str, validator, column: str, what: str) -> str:
    """``value`` stripped; a ``RowInvalid`` naming ``column`` when it is set but not ``what``."""
    value = value.strip()
    if value:
        try:
            validator(value)
        except ValidationError:
            raise RowInvalid(f"'{column}' is not {what}: {value!r}.") from None
    return value


def email(value: str, column: str = "email") -> str:
    return _validated(value, _email, column, "an e-mail address")


def url(value: str, column: str) -> str:
    value = _validated(value, _url, column, "an http(s) URL")
    if len(value) > 1000:
        raise RowInvalid(f"'{column}' is longer than 1000 characters.")
    return value


def event_id(fmt: str, customer: str, item: str, kind: str, occurred_at: datetime, order_id: str = "") -> str:
    """Deterministic: the same (customer, item, kind, time[, order]) always gets the same id.

    The order id joins the key only when given, so re-importing a file without orders keeps the
    ids of earlier imports, and one product in two orders placed in the same second stays two events.
    """
    parts = (customer, item, kind, occurred_at.isoformat(), *((order_id,) if order_id else ()))
    key = "\x1f".join(parts)
    return f"import:{fmt}:{hashlib.sha1(key.encode()).hexdigest()}"


class Importer(ABC):
    """One import run: ``validate`` (first pass, no writes) then ``write`` (second pass, one transaction)."""

    format = ""

    def __init__(self, directory: Path, *, skip_bad: bool = False, progress: bool = False):
        self.directory = Path(directory)
        self.report = ImportReport(self.format, str(self.directory))
        self.scanner = Scanner(self.directory, self.report, skip_bad=skip_bad, progress=progress)

    def run(self) -> ImportReport:
        started = time.monotonic()
        if not self.directory.is_dir():
            raise DatasetImportError(f"{self.directory}: not a directory.")
        self.validate()
        if not self.scanner.skip_bad:
            self.scanner.fail()
        with transaction.atomic():
            self.write()
        self.report.elapsed_s = time.monotonic() - started
        return self.report

    @abstractmethod
    def validate(self) -> None:
        """First pass: read every row of every file and record problems; write nothing."""

    @abstractmethod
    def write(self) -> None:
        """Second pass, inside one transaction: write the rows in batches."""

    def record(self, name: str, *, read: int, created: int) -> None:
        """Count rows written outside ``Scanner.read`` (e.g. customers known only from events)."""
        file_report = self.report.file(name)
        file_report.read += read
        file_report.created += created
        file_report.present += read - created

    def written(self, name: str, created: int) -> None:
        """Close a file's counts after its rows were written by ``Scanner.read`` + a writer."""
        file_report = self.report.file(name)
        file_report.created = created
        file_report.present = file_report.read - file_report.skipped - created
