"""How close every second-order mode comes to the R-operator, as a Markdown table.

    python scripts/second_order_table.py RUN.json

reads a ``gradparity run --order 2 --json RUN.json`` document and prints one row per backend
and mode: per dtype, the worst relative error (max |a - b| / max |b|) over its passing checks,
with the case and quantity, and the largest share of its tolerance any of them used; then the
registered deviations that explain its other checks, and the cases it was skipped on, with the
reason. ``docs/explanation/second-order.md`` shows its output.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from gradparity.reports import read_document


def worst(checks: list, key: str) -> tuple[float, str]:
    """The largest finite ``key`` among ``checks`` (case, check) and where it is, or (nan, "")."""
    measured = [(getattr(check, key), f"{case}, {check.quantity}") for case, check in checks
                if getattr(check, key) is not None and math.isfinite(getattr(check, key))]
    return max(measured, default=(math.nan, ""))


def table(path: str) -> str:
    """The Markdown table of the document at ``path``."""
    document = read_document(json.loads(Path(path).read_text()), path)
    dtypes = document.options.dtypes
    rows: dict[tuple[str, str], dict[str, list]] = {}
    skipped: dict[tuple[str, str], set[str]] = {}
    deviations: dict[tuple[str, str], set[str]] = {}
    for result in document.results:
        for backend, outcome in result.backends.items():
            for mode, record in outcome.modes.items():
                row = rows.setdefault((backend, mode), {dtype: [] for dtype in dtypes})
                if record.status == "skipped":
                    skipped.setdefault((backend, mode), set()).add(f"{result.case} ({record.reason})")
                checks = [check for check in outcome.checks if check.mode == mode and check.kind != "dtype"]
                row[result.dtype] += [(result.case, check) for check in checks if check.verdict == "pass"]
                for check in checks:
                    if check.deviation is not None:
                        deviations.setdefault((backend, mode), set()).add(check.deviation.name)
    lines = ["| backend | mode | " + " | ".join(f"{dtype}: worst relative error | {dtype}: share" for dtype in dtypes) + " |",
             "|---|---|" + "---|---|" * len(dtypes)]
    for (backend, mode), by_dtype in rows.items():
        cells = []
        for dtype in dtypes:
            error, where = worst(by_dtype[dtype], "rel_error")
            share, _where = worst(by_dtype[dtype], "excess")
            cells += [f"{error:.1e} ({where})" if where else "–", f"{share:.2g}×" if not math.isnan(share) else "–"]
        lines.append(f"| {backend} | {mode} | " + " | ".join(cells) + " |")
    notes = [f"- {backend} {mode}: the other checks are known deviations ({', '.join(sorted(names))})"
             for (backend, mode), names in deviations.items()]
    notes += [f"- {backend} {mode} skipped on {', '.join(sorted(cases))}" for (backend, mode), cases in skipped.items()]
    return "\n".join(lines + ([""] + notes if notes else []))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/second_order_table.py RUN.json")
    print(table(sys.argv[1]))
