"""Bulk imports of whole datasets (``manage.py import_dataset``); see docs/import.md."""
from __future__ import annotations

from pathlib import Path

from .base import DatasetImportError, ImportReport, RowError
from .canonical import CanonicalImporter
from .movielens import MovieLensImporter

IMPORTERS = {importer.format: importer for importer in (CanonicalImporter, MovieLensImporter)}
FORMATS = tuple(IMPORTERS)

__all__ = ["FORMATS", "DatasetImportError", "ImportReport", "RowError", "dataset_import"]


def dataset_import(*, fmt: str, directory: Path | str, skip_bad: bool = False, progress: bool = False) -> ImportReport:
    """Validate every row of the dataset in ``directory``, then write it in one transaction.

    Raises DatasetImportError (and writes nothing) on a malformed row unless ``skip_bad``; re-running
    an import adds nothing: customers and items are upserted, events have deterministic ids.
    """
    if fmt not in IMPORTERS:
        raise DatasetImportError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    return IMPORTERS[fmt](Path(directory), skip_bad=skip_bad, progress=progress).run()
