"""Medians of several ``python -m bench --json FILE`` runs, as the bench's table.

``python -m bench.summary run1.jsonl run2.jsonl [--markdown]``: records are matched by target,
path, scenario, mode, concurrency, body and stream count; numbers become the median over the
runs (the issue's "medians of two runs" are the mean of the two), text fields are the first run's.
Runs of ``python -m bench.sized`` give its size curve instead (records matched by path and size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from bench import sized
from bench.run import table

_KEY = ("target", "path", "scenario", "mode", "c", "body", "streams")
_SIZED_KEY = ("path", "target_bytes", "scenario")


def medians(runs: list[list[dict[str, Any]]], key: tuple[str, ...] = _KEY) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        for record in run:
            if key[0] in record and key[1] in record:
                groups.setdefault(tuple(record.get(k) for k in key), []).append(record)
    out: list[dict[str, Any]] = []
    for records in groups.values():
        merged = dict(records[0])
        for field, value in records[0].items():
            values = [r[field] for r in records if isinstance(r.get(field), int | float) and not isinstance(r.get(field), bool)]
            if field not in key and isinstance(value, int | float) and not isinstance(value, bool) and values:
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
    if any(r.get("scenario") == "sized" for run in runs for r in run):
        curve = [r for r in medians(runs, _SIZED_KEY) if r.get("scenario") == "sized"]
        print(sized.table(curve, markdown=args.markdown))
        return 0
    deltas = 200
    print(table(medians(runs), deltas, markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
