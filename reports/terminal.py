"""The terminal's view of a document: the parity summary table of a ``gradparity/1`` result
and the timing table of a ``gradparity-bench/1`` document, printed with rich."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {"pass": "green", "known_deviation": "yellow", "fail": "bold red", "error": "red", "skipped": "dim"}
STATUS_LABEL = {"pass": "pass", "known_deviation": "known dev.", "fail": "FAIL", "error": "error", "skipped": "skipped"}


def print_summary(document: dict) -> None:
    """The case x backend table (status and worst error in ulps), then failures and errors."""
    backends = document["options"]["backends"]
    table = Table(title="gradparity: every backend against the NumPy reference (worst error in ulps)")
    table.add_column("case")
    for name in backends:
        table.add_column(name, justify="center")
    for result in document["results"]:
        table.add_row(f"{result['case']} {result['dtype']}", *(summary_cell(result["backends"][n]) for n in backends))
    console = Console(width=max(120, 14 * (len(backends) + 2)))
    console.print(table)
    counts = document["summary"]
    console.print(", ".join(f"{value} {key.replace('_', ' ')}" for key, value in counts.items()))
    for result in document["results"]:
        for name, backend in result["backends"].items():
            if backend["status"] in ("fail", "error"):
                console.print(f"[{STATUS_STYLE[backend['status']]}]{name} on {result['case']} {result['dtype']}: "
                              f"{backend['status']}[/]\n{backend['reason']}", markup=True, highlight=False)


def summary_cell(backend: dict) -> str:
    """The status in its colour, with the worst error in ulps where checks ran."""
    status = backend["status"]
    worst = backend.get("worst")
    figure = f" {worst['ulps']:.3g}" if worst and status in ("pass", "known_deviation", "fail") else ""
    return f"[{STATUS_STYLE[status]}]{STATUS_LABEL[status]}{figure}[/]"


def seconds(value: float | None) -> str:
    """``12.3 µs`` / ``4.56 ms`` / ``1.23 s``; an em dash for None."""
    if value is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def print_bench_table(document: dict) -> None:
    """The rich table: shape, dtype, backend, mode, median, min–max, compile, × reference, note."""
    environment = document["environment"]
    table = Table(title=f"gradparity bench: one training step (forward, backward, update), "
                        f"{environment['threads']} threads, device {environment['device']}")
    for column, justify in (("shape", "left"), ("dtype", "left"), ("backend", "left"), ("mode", "left"),
                            ("median", "right"), ("min–max", "right"), ("compile", "right"),
                            ("× reference", "right"), ("note", "left")):
        table.add_column(column, justify=justify)
    for row in document["results"]:
        spread = f"{seconds(row['min_s'])}–{seconds(row['max_s'])}" if row["median_s"] is not None else "—"
        ratio = "—" if row["ratio_to_reference"] is None else f"{row['ratio_to_reference']:.3g}"
        table.add_row(row["shape"], row["dtype"], row["backend"], row["mode"], seconds(row["median_s"]), spread,
                      seconds(row["compile_s"]), ratio, row["note"] or "")
    console = Console(width=160)
    console.print(table, highlight=False)
    for limit in document.get("bandwidth", {}).get("signs", []):
        console.print(bandwidth_line(limit, document["bandwidth"]["read_bytes_per_s"]), highlight=False)


def bandwidth_line(limit: dict, bandwidth: float) -> str:
    """One line: the signs step against the time of reading X twice at the measured bandwidth."""
    text = (f"signs {limit['dtype']}: reading X ({limit['x_bytes'] / 1e6:.0f} MB) twice at {bandwidth / 1e9:.1f} GB/s "
            f"takes {seconds(limit['floor_s'])}")
    if limit["reference_s"]:
        text += (f"; the reference step takes {seconds(limit['reference_s'])}, "
                 f"{limit['floor_s'] / limit['reference_s']:.0%} of that bandwidth limit")
    if limit["fastest_s"] and limit["fastest_s"] != limit["reference_s"]:
        text += (f"; the fastest, {limit['fastest']}, takes {seconds(limit['fastest_s'])}, "
                 f"{limit['floor_s'] / limit['fastest_s']:.0%}")
    return text
