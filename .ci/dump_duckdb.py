"""Print what a DuckDB file holds, as JSON, with whatever duckdb this interpreter has.

Usage: python dump_duckdb.py FILE. Opens FILE read-only and prints the duckdb version, every
table's row count and a checksum of its rows (sorted, as Python values), every view's row count,
and every comment of a table, view or column. Run by tests/test_serving_copy.py under the current
duckdb and under duckdb 1.1 in its own virtualenv, to compare what each reads from the serving
copy. Written for Python 3.9+ and duckdb 1.1+: no newer syntax, no project import.
"""

import hashlib
import json
import sys

import duckdb


def quoted(*names):
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)


def main(path):
    con = duckdb.connect(path, read_only=True)
    tables, views, comments = {}, {}, {}
    for schema, name, comment in con.execute(
        "select schema_name, table_name, comment from duckdb_tables() order by 1, 2"
    ).fetchall():
        rows = con.execute("select * from " + quoted(schema, name) + " order by all").fetchall()
        digest = hashlib.sha256(repr(rows).encode("utf-8")).hexdigest()
        tables[schema + "." + name] = {"rows": len(rows), "sha256": digest}
        comments[schema + "." + name] = comment
    for schema, name, comment in con.execute(
        "select schema_name, view_name, comment from duckdb_views() where not internal"
        " order by 1, 2"
    ).fetchall():
        count = con.execute("select count(*) from " + quoted(schema, name)).fetchone()[0]
        views[schema + "." + name] = count
        comments[schema + "." + name] = comment
    for schema, name, column, comment in con.execute(
        "select schema_name, table_name, column_name, comment from duckdb_columns()"
        " where comment is not null order by 1, 2, 3"
    ).fetchall():
        comments[schema + "." + name + "." + column] = comment
    print(
        json.dumps(
            {"duckdb": duckdb.__version__, "tables": tables, "views": views, "comments": comments},
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
