#!/usr/bin/env python3
"""Run dist/duckdb/fleet-queries.sql (the README's fleet queries) with DuckDB over a directory
of bouncer's Parquet files, and print each query's rows as one JSON line.

    python3 xtests/fleet/duckdb_queries.py QUERIES.sql FLEET_DIR
"""
import json
import sys

import duckdb


def main():
    queries_path, fleet = sys.argv[1], sys.argv[2]
    text = open(queries_path, encoding="utf-8").read()
    con = duckdb.connect()
    for q in [q for q in text.split(";") if "SELECT" in q]:
        q = q.replace("'fleet/**/minutes-*.parquet'", "'" + fleet + "/**/minutes-*.parquet'")
        cur = con.execute(q)
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, [v if isinstance(v, (int, float, str)) or v is None else str(v) for v in r])) for r in cur.fetchall()]
        print(json.dumps(rows), flush=True)


if __name__ == "__main__":
    main()
