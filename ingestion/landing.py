"""Finding extract files in a landing directory.

Layout (see docs/extract-contract.md)::

    <landing>/<system>/<table>/<any-name>.<csv|csv.gz|parquet|jsonl|jsonl.gz|json.gz>

Sub-folders below ``<table>/`` are allowed (for example one per day) and the path relative to the
landing directory identifies a file everywhere (manifest, raw ``_source_file``, quarantine).
Hidden files (``.name``) and marker files (``_SUCCESS``, ``_name``) are ignored; any other file
with an unknown ending is still listed, with ``file_format`` None, so it is refused visibly rather
than silently skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingestion.contract import EXTRACT_SUFFIXES, TableSchema

FileFormat = Literal["csv", "parquet", "json"]

_FORMAT_BY_SUFFIX: dict[str, FileFormat] = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
    ".jsonl": "json",
    ".jsonl.gz": "json",
    ".json.gz": "json",
}
assert set(_FORMAT_BY_SUFFIX) == set(EXTRACT_SUFFIXES), "keep in step with the contract"


@dataclass(frozen=True)
class LandingFile:
    """One extract file of one contract table."""

    path: Path
    #: Path relative to the landing directory, with forward slashes: the file's identity.
    relative: str
    table: TableSchema
    #: None when the name has no supported ending.
    file_format: FileFormat | None
    size: int

    @property
    def name(self) -> str:
        return self.path.name


def file_format(name: str) -> FileFormat | None:
    """The reader for a file name, by its ending (case-insensitive)."""
    lowered = name.lower()
    for suffix, fmt in sorted(_FORMAT_BY_SUFFIX.items(), key=lambda kv: -len(kv[0])):
        if lowered.endswith(suffix):
            return fmt
    return None


def table_dir(landing: Path, table: TableSchema) -> Path:
    return landing / table.system / table.name


def _is_ignored(path: Path, root: Path) -> bool:
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def discover(landing: Path, table: TableSchema) -> list[LandingFile]:
    """Every extract file of ``table`` under ``landing``, sorted by relative path."""
    root = table_dir(landing, table)
    if not root.is_dir():
        return []
    files = [p for p in root.rglob("*") if p.is_file() and not _is_ignored(p, root)]
    return [
        LandingFile(
            path=p,
            relative=p.relative_to(landing).as_posix(),
            table=table,
            file_format=file_format(p.name),
            size=p.stat().st_size,
        )
        for p in sorted(files, key=lambda p: p.relative_to(landing).as_posix())
    ]


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed, never loaded whole)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
