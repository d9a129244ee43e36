"""Medians of several ``python -m bench --json FILE`` runs, as the bench's table.

``python -m bench.summary run1.jsonl run2.jsonl [--markdown]``: records are matched by target,
path, scenario, mode, concurrency, body and stream count; numbers become the median over the
runs (the issue's "medians of two runs" are the mean of the two), text fields are the first run's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from bench.run import table

_KEY = ("target", "path", "scenario", "mode", "c", "body", "streams")


def medians(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        for record in run:
            if "target" in record:
                groups.setdefault(tuple(record.get(k) for k in _KEY), []).append(record)
    out: list[dict[str, Any]] = []
    for records in groups.values():
        merged = dict(records[0])
        for field, value in records[0].items():
            values = [r[field] for r in records if isinstance(r.get(field), int | float) and not isinstance(r.get(field), bool)]
            if field not in _KEY and isinstance(value, int | float) and not isinstance(value, bool) and values:
                m = statistics.median(values)
                merged[field] = round(m) if isinstance(value, int) else round(m, 3)
        merged["runs"] = len(records)
        out.append(merged)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.summary", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    runs = [[json.loads(line) for line in open(path) if line.strip()] for path in args.files]
    deltas = 200
    print(table(medians(runs), deltas, markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
