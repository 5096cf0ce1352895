"""Finding extract files in a landing directory.

Layout (see docs/extract-contract.md)::

    <landing>/<system>/<table>/<any-name>.<csv|csv.gz|parquet|jsonl|jsonl.gz|json.gz>

Sub-folders below ``<table>/`` are allowed (for example one per day) and the path relative to the
landing directory identifies a file everywhere (manifest, raw ``_source_file``, quarantine).
Hidden files (``.name``) and marker files (``_SUCCESS``, ``_name``) are not extracts; any other
file with an unknown ending is still listed, with ``file_format`` None, so it is refused visibly
rather than silently skipped.

Nothing is skipped silently: :func:`unrecognised_files` lists every file under the landing
directory that no table asset owns (unknown system or table folders, files one level too high,
hidden and marker files), each with the reason and, for a likely typo, the closest table.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingestion.contract import EXTRACT_SUFFIXES, SYSTEMS, TABLES, TableSchema

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


@dataclass(frozen=True)
class UnrecognisedFile:
    """A file under the landing directory that no table asset loads."""

    #: Path relative to the landing directory, forward slashes.
    source_file: str
    reason: str
    #: True when it looks like data (not hidden, not a marker): it would otherwise be lost.
    blocking: bool
    #: ``<system>/<table>`` the file was probably meant for, if any.
    closest_table: str | None
    size: int

    @property
    def message(self) -> str:
        hint = f"; did you mean {self.closest_table}/?" if self.closest_table else ""
        action = (
            " Move it into its <system>/<table>/ folder (or out of the landing directory)."
            if self.blocking
            else " Not an extract: nothing to do."
        )
        return f"{self.source_file}: not loaded: {self.reason}{hint}.{action}"


def _closest(candidates: list[str], *words: str) -> str | None:
    """The candidate closest to any of ``words`` (difflib), or None when nothing is close."""
    for word in words:
        match = difflib.get_close_matches(word.lower(), candidates, n=1, cutoff=0.6)
        if match:
            return match[0]
    return None


def _closest_by_name(
    word: str, tables: tuple[TableSchema, ...], system: str | None = None
) -> str | None:
    """The table (``<system>/<table>``) whose name is closest to ``word``: within ``system``
    first when given, then among all tables."""
    pools = [[t for t in tables if t.system == system]] if system else []
    for pool in [*pools, list(tables)]:
        names = {t.name: t.asset_path for t in pool}
        name = _closest(list(names), word)
        if name is not None:
            return names[name]
    return None


def _stem(name: str) -> str:
    fmt_suffix = next((s for s in EXTRACT_SUFFIXES if name.lower().endswith(s)), "")
    return name[: len(name) - len(fmt_suffix)] if fmt_suffix else name.split(".", 1)[0]


def _classify(
    parts: tuple[str, ...], tables: tuple[TableSchema, ...]
) -> tuple[str, bool, str | None] | None:
    """(reason, blocking, closest table) for a file no table owns; None when one does."""
    if any(part.startswith(".") for part in parts):
        return "a hidden file (its name or a folder's starts with '.')", False, None
    if parts[-1].startswith("_"):
        return "a marker file (its name starts with '_', e.g. _SUCCESS)", False, None
    paths = [t.asset_path for t in tables]
    by_path = {t.asset_path: t for t in tables}
    systems = sorted({t.system for t in tables} | set(SYSTEMS))
    if len(parts) == 1:
        return (
            "directly under the landing directory; extracts go in <system>/<table>/",
            True,
            _closest_by_name(_stem(parts[0]), tables),
        )
    system, rest = parts[0], parts[1:]
    if system not in systems:
        guess = f"{_closest(systems, system) or system}/{rest[0]}" if len(rest) > 1 else ""
        return (
            f"unknown system folder {system} (the contract has: {', '.join(systems)})",
            True,
            _closest(paths, f"{system}/{rest[0]}", guess) if len(rest) > 1 else None,
        )
    if len(rest) == 1:
        return (
            f"directly under the system folder {system}; extracts go in {system}/<table>/",
            True,
            _closest_by_name(_stem(rest[0]), tables, system),
        )
    if f"{system}/{rest[0]}" not in by_path:
        return (
            f"unknown table folder {system}/{rest[0]}"
            f" ({system} has: {', '.join(t.name for t in tables if t.system == system)})",
            True,
            _closest_by_name(rest[0], tables, system),
        )
    if any(part.startswith("_") for part in rest[1:-1]):
        return "inside a folder whose name starts with '_' (e.g. _temporary)", False, None
    return None


def unrecognised_files(
    landing: Path, tables: tuple[TableSchema, ...] = TABLES
) -> list[UnrecognisedFile]:
    """Every file under ``landing`` that no table asset loads, sorted by path, with a reason.

    Blocking: anything that looks like data (it would otherwise be lost): files in unknown
    system or table folders (the closest table is suggested for a typo such as
    ``crm/acounts/``), and files directly under the landing root or a system folder. Not
    blocking: hidden files and folders (``.name``), marker files (``_SUCCESS``) and files in a
    ``_``-folder below a table folder, which extract writers leave by convention.
    """
    if not landing.is_dir():
        return []
    found = []
    for path in sorted(landing.rglob("*")):
        if not path.is_file():
            continue
        parts = path.relative_to(landing).parts
        classified = _classify(parts, tables)
        if classified is not None:
            reason, blocking, closest = classified
            found.append(
                UnrecognisedFile("/".join(parts), reason, blocking, closest, path.stat().st_size)
            )
    return sorted(found, key=lambda f: f.source_file)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed, never loaded whole)."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
