"""Writing extracts in the landing layout, byte-for-byte reproducibly.

CSV: UTF-8, header row, RFC 4180 (CRLF line ends, minimal quoting), empty field = null, columns in
the contract's order. Parquet: fixed writer settings and no wall-clock metadata, so the same rows
always give the same bytes.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.contract import TableSchema

#: Fixed Parquet settings: the files' bytes depend on the rows only.
PARQUET_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": ["account_id", "user_id", "event_name", "properties"],
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
}


def table_dir(out_dir: Path, schema: TableSchema) -> Path:
    return out_dir / schema.system / schema.name


def clear_tables(out_dir: Path, schemas: Iterable[TableSchema]) -> None:
    """Remove the generated tables' folders (only those) and create them empty."""
    for schema in schemas:
        folder = table_dir(out_dir, schema)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)


def write_csv(path: Path, schema: TableSchema, rows: Iterable[dict[str, str | None]]) -> int:
    """Write rows (dicts of already formatted strings, None = null) in the contract's column order."""
    columns = schema.column_names
    count = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        out.writerow(columns)
        for row in rows:
            if len(row) != len(columns):
                extra = sorted(set(row) - set(columns))
                raise ValueError(
                    f"{schema.asset_path}: row has columns {extra} not in the contract"
                )
            out.writerow(["" if row[c] is None else row[c] for c in columns])
            count += 1
    return count


def write_parquet(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path, **PARQUET_OPTIONS)


def id_array(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``numbers`` as an Arrow string array, without a Python loop."""
    numbers = np.asarray(numbers, np.int64)
    if numbers.size and int(numbers.max()) >= 10**width:
        raise ValueError(f"{prefix} ids need more than {width} digits")
    head = np.frombuffer(prefix.encode("ascii"), np.uint8)
    size = head.size + width
    buf = np.empty((numbers.size, size), np.uint8)
    buf[:, : head.size] = head
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    buf[:, head.size :] = (numbers[:, None] // powers) % 10 + ord("0")
    offsets = np.arange(0, (numbers.size + 1) * size, size, dtype=np.int32)
    return pa.StringArray.from_buffers(numbers.size, pa.py_buffer(offsets), pa.py_buffer(buf))
