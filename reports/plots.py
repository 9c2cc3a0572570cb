"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no global backend) and
returned as PNG bytes; None when the data to draw is all missing. Imported only when a report
is rendered. The same data always gives the same bytes: matplotlib's default style, a fixed
hash salt, and a PNG written by Pillow with no text chunks (no timestamp, no version)."""

from __future__ import annotations

import functools
import io
import math
from typing import Callable, Iterator

import matplotlib
import numpy as np
from matplotlib import colors, style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import LogLocator, MaxNLocator
from matplotlib.transforms import blended_transform_factory
from PIL import Image

from gradparity.core.results import BenchDocument, BenchRow, CaseResult, Check
from gradparity.reports import formatting

DPI = 100
EPS = {"float64": 2.0 ** -52, "float32": 2.0 ** -23, "float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}
STYLE = {"svg.hashsalt": "gradparity", "figure.dpi": DPI, "font.size": 8, "axes.titlesize": 9,
         "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}
REFERENCE = {"color": "0.35", "linewidth": 4.0, "alpha": 0.45, "label": "reference (NumPy)"}
LOG10_RANGE = (-17.0, 0.0)
VERDICT_EDGE = {"fail": "#c62828", "known_deviation": "#e69500"}
MODE_COLOURS = {"eager": "#4c72b0", "compiled": "#dd8452"}
MARKERS = "osD^vPX*"


def _figure(draw: Callable[..., Figure | None]) -> Callable[..., bytes | None]:
    """Run ``draw`` under the report style and encode the figure it returns as PNG."""

    @functools.wraps(draw)
    def encoded(*args, **kwargs) -> bytes | None:
        with style.context("default"), matplotlib.rc_context(STYLE):
            fig = draw(*args, **kwargs)
            return None if fig is None else _png(fig)

    return encoded


def draw(plot: str, data: dict) -> bytes | None:
    """The PNG of ``plot`` (one of this module's figure functions) drawn from ``data``, its
    keyword arguments; None when there is nothing to draw."""
    return globals()[plot](**data)


def _png(fig: Figure) -> bytes:
    """Render ``fig`` with Agg and encode it with a 256-colour palette: a third of the size of
    an RGBA PNG, with no visible loss for line plots and ten-level contours."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    image = rgba.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="png", optimize=True, dpi=(DPI, DPI))
    return buffer.getvalue()


@_figure
def cost_curves(case: str, results: list[CaseResult], backends: list[str]) -> Figure | None:
    """Training cost per step: the reference thick, each backend thin and dashed, one panel
    per dtype."""
    if not _any_trajectory(results):
        return None
    fig, axes = _panels(len(results), 3.3, 2.6)
    looks = _line_styles(backends)
    for ax, result in zip(axes, results):
        reference = _floats(result.reference.costs)
        ax.plot(np.arange(reference.size), reference, **REFERENCE)
        for name, label, costs in _trajectories(result, backends):
            ax.plot(np.arange(costs.size), costs, linewidth=1.1, linestyle="--", markersize=3,
                    label=label, **looks[name])
        ax.set(title=f"{case} · {result.dtype}", xlabel="training step", ylabel="cost J")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend(fig, axes)
    return fig


@_figure
def cost_divergence(case: str, results: list[CaseResult], backends: list[str]) -> Figure | None:
    """|J_backend − J_reference| per step on a log scale, one panel per dtype; exact zeros are
    drawn at a floor of eps · max|J| / 10, one ulp of the cost (eps · max|J|) is marked."""
    if not _any_trajectory(results):
        return None
    fig, axes = _panels(len(results), 3.3, 2.6)
    looks = _line_styles(backends)
    for ax, result in zip(axes, results):
        scale = float(np.nanmax(np.abs(_floats(result.reference.costs)), initial=0.0)) or 1.0
        ulp = EPS.get(result.dtype, EPS["float64"]) * scale
        for name, label, costs in _trajectories(result, backends):
            reference = _reference_costs(result, result.backends[name].optimizer)
            n = min(costs.size, reference.size)
            difference = np.maximum(np.abs(costs[:n] - reference[:n]), ulp / 10)
            ax.plot(np.arange(n), difference, linewidth=1.1, markersize=3, label=label, **looks[name])
        ax.axhline(ulp, color="0.3", linestyle="-.", linewidth=0.8, label="1 ulp of the cost (eps · max J)")
        ax.axhline(ulp / 10, color="0.5", linestyle=":", linewidth=0.8, label="floor: exact 0 drawn here")
        _log_y(ax)
        ax.set_ylim(bottom=ulp / 20)
        ax.set(title=f"{case} · {result.dtype}", xlabel="training step",
               ylabel="|J backend − J reference|")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend(fig, axes)
    return fig


@_figure
def gradient_errors(case: str, results: list[CaseResult], backends: list[str]) -> Figure | None:
    """Heatmap of log10 relative error, backends × gradients (dW, db), one panel per dtype;
    cells outside tolerance are outlined (red fail, amber known deviation)."""
    grids = [_gradient_grid(result, backends) for result in results]
    if not any(rows for rows, _, _ in grids):
        return None
    width = max(len(columns) for _, columns, _ in grids) * 0.55 + 1.4
    height = max(len(rows) for rows, _, _ in grids) * 0.32 + 1.5
    fig, axes = _panels(len(results), width, height)
    image = None
    for ax, result, (rows, columns, cells) in zip(axes, results, grids):
        ax.set_title(f"{case} · {result.dtype}")
        ax.grid(False)
        if not rows:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no gradients computed", ha="center", va="center", transform=ax.transAxes)
            continue
        image = _heatmap(ax, rows, columns, cells)
    fig.colorbar(image, ax=list(axes), label="log10 relative error", shrink=0.9)
    outlines = [Patch(facecolor="none", edgecolor=colour,
                      label=f"outside tolerance: {verdict.replace('_', ' ')}")
                for verdict, colour in VERDICT_EDGE.items()]
    fig.legend(handles=outlines, loc="outside lower center", ncols=2)
    return fig


def _gradient_grid(result: CaseResult, backends: list[str]) -> tuple[list[str], list[str], dict]:
    """Rows (backends with gradient checks), columns (gradients in order of appearance) and
    ``{(row, column): check}``."""
    rows, columns, cells = [], [], {}
    for name in backends:
        checks = [c for c in result.backends[name].checks if c.kind == "gradients"] if name in result.backends else []
        if checks:
            rows.append(name)
        for check in checks:
            if check.quantity not in columns:
                columns.append(check.quantity)
            cells[name, check.quantity] = check
    return rows, columns, cells


def _heatmap(ax: Axes, rows: list[str], columns: list[str], cells: dict) -> AxesImage:
    """Draw one panel: coloured log10 errors, their values written in, failures outlined."""
    values = np.full((len(rows), len(columns)), np.nan)
    for (name, quantity), check in cells.items():
        if math.isfinite(check.rel_error):
            values[rows.index(name), columns.index(quantity)] = _log10(check.rel_error)
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#eeeeee")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=LOG10_RANGE[0], vmax=LOG10_RANGE[1],
                      aspect="auto")
    for (i, name), (j, quantity) in ((r, c) for r in enumerate(rows) for c in enumerate(columns)):
        check = cells.get((name, quantity))
        value = values[i, j]
        text = _error_label(value, check)
        dark = not np.isnan(value) and value > sum(LOG10_RANGE) / 2
        ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="white" if dark else "black")
        if check is not None and check.verdict in VERDICT_EDGE:
            ax.add_patch(Rectangle((j - 0.44, i - 0.44), 0.88, 0.88, fill=False, linewidth=2.0,
                                   edgecolor=VERDICT_EDGE[check.verdict]))
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("gradient")
    return image


def _error_label(value: float, check: Check | None) -> str:
    """What a heatmap cell says: its log10 relative error, ``exact`` for none, ``n/a`` unmeasured."""
    if np.isnan(value):
        return "n/a"
    if check is not None and check.rel_error == 0:
        return "exact"
    return f"{value:.1f}"


@_figure
def decision_boundary(case: str, results: list[CaseResult]) -> Figure | None:
    """Probability contours of the trained reference network over its 2-D data, the 0.5
    contour in black and the points coloured by label (first dtype that has a boundary)."""
    result = next((r for r in results if r.reference.decision_boundary is not None), None)
    if result is None or result.reference.decision_boundary is None:
        return None
    boundary = result.reference.decision_boundary
    fig = Figure(figsize=(4.4, 3.4), layout="constrained")
    ax = fig.subplots()
    x, y, probability = (np.asarray(values, dtype=float) for values in (boundary.x, boundary.y, boundary.probability))
    cmap, norm = matplotlib.colormaps["RdBu_r"], colors.Normalize(0.0, 1.0)
    filled = ax.contourf(x, y, probability, levels=np.linspace(0.0, 1.0, 11), cmap=cmap, norm=norm, alpha=0.6)
    ax.contour(x, y, probability, levels=[0.5], colors="black", linewidths=1.0)
    points = np.asarray(boundary.points, dtype=float)
    labels = np.ravel(np.asarray(boundary.labels, dtype=float))
    for k, label in enumerate(np.unique(labels)):
        chosen = labels == label
        ax.scatter(points[0, chosen], points[1, chosen], s=14, marker=MARKERS[k % len(MARKERS)],
                   color=cmap(norm(label)), edgecolors="white", linewidths=0.5, label=f"label {label:g}")
    fig.colorbar(filled, ax=ax, label="P(y = 1), trained reference")
    accuracy = "" if boundary.accuracy is None else f"accuracy {boundary.accuracy:.1f}%"
    iterations = "" if boundary.iterations is None else f"{boundary.iterations} iterations"
    ax.set(title=f"{case} · {result.dtype}\n{', '.join(filter(None, (accuracy, iterations)))}",
           xlabel="$x_1$", ylabel="$x_2$")
    ax.grid(False)
    ax.legend(loc="upper right", framealpha=0.8)
    return fig


@_figure
def backend_times(seconds: dict[str, float], backends: list[str]) -> Figure | None:
    """Horizontal bars of wall time per backend over the whole run, in ``backends`` order."""
    if not backends:
        return None
    fig = Figure(figsize=(5.2, 0.3 * len(backends) + 1.0), layout="constrained")
    ax = fig.subplots()
    values = [seconds[name] for name in backends]
    looks = _line_styles(backends)
    bars = ax.barh(backends, values, color=[looks[name]["color"] for name in backends])
    ax.bar_label(bars, labels=[formatting.seconds(v, "s") for v in values], padding=3, fontsize=7)
    ax.invert_yaxis()
    ax.margins(x=0.15)
    ax.set(title="Wall time per backend (whole run)", xlabel="wall time (s)")
    ax.grid(axis="y", visible=False)
    return fig


@_figure
def benchmark(bench: BenchDocument) -> Figure | None:
    """Grouped bars of median step time (log scale), backends × modes, one panel per shape and
    dtype; whiskers span min to max."""
    entries = [r for r in bench.results if r.mode in MODE_COLOURS]
    if all(r.median_s is None for r in entries):
        return None
    groups = list(dict.fromkeys((r.shape, r.dtype) for r in entries))
    fig, axes = _panels(len(groups), max(3.0, 0.5 * len({r.backend for r in entries}) + 1.2), 2.8)
    modes = [m for m in MODE_COLOURS if any(r.mode == m for r in entries)]
    width = 0.8 / len(modes)
    for ax, (shape, dtype) in zip(axes, groups):
        group = [r for r in entries if (r.shape, r.dtype) == (shape, dtype)]
        names = list(dict.fromkeys(r.backend for r in group))
        for k, mode in enumerate(modes):
            chosen = [r for r in group if r.mode == mode]
            xs = [names.index(r.backend) + (k - (len(modes) - 1) / 2) * width for r in chosen]
            timed = [(x, r) for x, r in zip(xs, chosen) if r.median_s is not None]
            ax.bar([x for x, _ in timed], [r.median_s for _, r in timed], width,
                   yerr=_spread([r for _, r in timed]), color=MODE_COLOURS[mode],
                   error_kw={"linewidth": 0.7, "capsize": 1.5}, label=mode)
            _mark_not_run(ax, [x for x, r in zip(xs, chosen) if r.median_s is None])
        _log_y(ax)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set(title=f"{shape} · {dtype}", ylabel="median step time (s)")
        ax.grid(axis="x", visible=False)
    _legend(fig, axes)
    return fig


def _mark_not_run(ax: Axes, xs: list[float]) -> None:
    """Write "not run" where a bar is missing, so an absent bar is not read as zero."""
    at_bottom = blended_transform_factory(ax.transData, ax.transAxes)
    for x in xs:
        ax.text(x, 0.02, "not run", transform=at_bottom, rotation=90, ha="center", va="bottom",
                fontsize=6.5, color="0.35")


def _spread(entries: list[BenchRow]) -> np.ndarray:
    """Whisker lengths below and above each median (min and max; zero where not measured)."""
    below = [spread(r.min_s, r.median_s) for r in entries]
    above = [spread(r.median_s, r.max_s) for r in entries]
    return np.clip(np.array([below, above]).reshape(2, -1), 0.0, None)


def spread(low: float | None, high: float | None) -> float:
    """``high - low``, zero where either was not measured."""
    if low is None or high is None:
        return 0.0
    return high - low


def _panels(n: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` panels side by side (three to a row), each ``width`` × ``height`` inches."""
    columns = min(n, 3)
    rows = math.ceil(n / columns)
    fig = Figure(figsize=(width * columns + 1.3, height * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _legend(fig: Figure, axes: list[Axes]) -> None:
    """One legend for the figure, right of the panels, each label once in first-seen order."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside right upper")


def _line_styles(backends: list[str]) -> dict[str, dict]:
    """One colour and marker per backend, the same in every figure, so overlapping lines can
    still be told apart."""
    palette = matplotlib.colormaps["tab10"].colors
    return {name: {"color": palette[i % len(palette)], "marker": MARKERS[i % len(MARKERS)]}
            for i, name in enumerate(backends)}


def _log_y(ax: Axes) -> None:
    """A log y axis with at most six labelled decades and minor ticks at 2 and 5 only (labelled
    by matplotlib when the axis spans too few decades to read otherwise)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(numticks=6))
    ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0), numticks=12))


def _any_trajectory(results: list[CaseResult]) -> bool:
    return any(backend.costs for result in results for backend in result.backends.values())


def _reference_costs(result: CaseResult, form: str | None) -> np.ndarray:
    """The reference's costs in optimizer form ``form`` (the other Adam form's, where the
    document has them), else in the case's own."""
    formulations = result.reference.formulations
    other = formulations.costs if formulations else {}
    return _floats(other[form] if form in other else result.reference.costs)


def _trajectories(result: CaseResult, backends: list[str]) -> Iterator[tuple[str, str, np.ndarray]]:
    """(backend, label, costs as floats) for every backend of ``result`` that has a cost
    trajectory; the label names the optimizer form it ran when that is not the reference's."""
    own = result.reference.optimizer
    for name in backends:
        backend = result.backends.get(name)
        if backend and backend.costs:
            form = backend.optimizer
            yield name, f"{name} ({form})" if own and form and form != own else name, _floats(backend.costs)


def _floats(values: list) -> np.ndarray:
    """A float array with null as NaN (not drawn)."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _log10(x: float) -> float:
    """log10 clipped to the colour range; 0 maps to its floor."""
    return float(np.clip(math.log10(x) if x > 0 else LOG10_RANGE[0], *LOG10_RANGE))
