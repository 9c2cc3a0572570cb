"""One backend at several versions side by side (``gradparity run --backends jax==0.4.30,jax``),
as the terminal and the reports say it: which columns are versions of one backend and the
version each ran, and the between-versions comparisons gathered by pair of columns, each
quantity's distance and each probed op in words."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gradparity.core.results import Document, OpGap, VersionComparison, VersionGap, split_requirement
from gradparity.reports.digest import hits
from gradparity.reports.formatting import plural, sci, ulps

VERSIONS_TITLE = "between versions: each backend's two versions against each other, entry by entry"
VERSIONS_TEXT = (
    "Where a backend ran at two versions, each quantity of each run is compared between them entry by entry: "
    "the largest distance between two entries in units in the last place of the dtype (ulp), the largest "
    "absolute difference and how many entries differ. The op probes ran in both versions: an op whose outputs "
    "differ is shown with its relative error against NumPy in float64 in each version. Bit-identical on a run: "
    "every entry of every quantity and every probed op's output equal.")


def short_version(version: str | None) -> str:
    """The version number in a framework's version string: ``0.10.2`` of ``jax 0.10.2``,
    ``3.15.1`` of ``keras 3.15.1 on jax 0.10.2``; the string itself where no word starts with a
    digit, empty for None."""
    if version is None:
        return ""
    return next((word for word in version.split() if word[:1].isdigit()), version)


def says_version(column: str, version: str | None) -> bool:
    """Whether a column's name says the version it ran: ``jax==0.4.30`` that ran jax 0.4.30."""
    _, specifier = split_requirement(column)
    return bool(version) and specifier.removeprefix("==") == short_version(version) != specifier


def version_line(column: str, version: str | None) -> str:
    """What to write under a versioned column's name: the version it ran (``0.10.2``), empty
    where its name says it already or it is not known."""
    if says_version(column, version):
        return ""
    return short_version(version)


def versioned_columns(document: Document, columns: list[str]) -> dict[str, str]:
    """The columns that are versions of one backend, each with its ``version_line``: two or more
    columns of one backend, one of them with a version requirement (``jax==0.4.30`` beside
    ``jax``), and every column a between-versions comparison names; empty for a run without."""
    backends: dict[str, list[str]] = {}
    for column in columns:
        backends.setdefault(split_requirement(column)[0], []).append(column)
    versioned = {column for group in backends.values()
                 if len(group) > 1 and any(split_requirement(column)[1] for column in group) for column in group}
    versioned |= {column for comparison in document.versions for column in comparison.columns}
    frameworks = document.environment.frameworks
    return {column: version_line(column, frameworks.get(column)) for column in columns if column in versioned}


def column_label(column: str, version: str | None) -> str:
    """A column and, where its name does not say it, the version it ran: ``jax==0.4.30``,
    ``jax (0.10.2)``."""
    line = version_line(column, version)
    if not line:
        return column
    return f"{column} ({line})"


@dataclass
class VersionPair:
    """One backend at two versions: its two columns, the framework version each ran and the
    comparisons of its runs, in the document's order."""

    backend: str
    columns: tuple[str, str]
    versions: tuple[str | None, str | None]
    comparisons: list[VersionComparison]

    def labels(self) -> tuple[str, str]:
        """Each column named with its version (``column_label``)."""
        first, second = (column_label(column, version) for column, version in zip(self.columns, self.versions))
        return first, second

    def title(self) -> str:
        """``jax==0.4.30 against jax (0.10.2)``."""
        first, second = self.labels()
        return f"{first} against {second}"

    def identical(self) -> list[VersionComparison]:
        """The runs on which every quantity and every probed op is bit-identical."""
        return [comparison for comparison in self.comparisons if comparison.identical()]

    def differing(self) -> list[VersionComparison]:
        """The runs on which some quantity or probed op differs."""
        return [comparison for comparison in self.comparisons if not comparison.identical()]

    def identical_text(self, document: Document, sentence: bool = False) -> str:
        """``bit-identical on all 2 cases × float64, float32``: the runs on which every quantity
        and probed op is, ``(no op probed)`` after it where no op was; as a sentence's start
        (``sentence=True``) ``Bit-identical ...``."""
        runs = self.identical()
        same = "Bit-identical" if sentence else "bit-identical"
        text = f"{same} on {hits(runs, document)}"
        if not any(comparison.ops for comparison in runs):
            text += " (no op probed)"
        return text


def version_pairs(document: Document) -> list[VersionPair]:
    """The document's between-versions comparisons gathered by backend and pair of columns, in
    the order they first appear."""
    pairs: dict[tuple[str, tuple[str, ...]], VersionPair] = {}
    for comparison in document.versions:
        first, second = comparison.columns
        key = (comparison.backend, (first, second))
        if key not in pairs:
            older, newer = comparison.versions
            pairs[key] = VersionPair(comparison.backend, (first, second), (older, newer), [])
        pairs[key].comparisons.append(comparison)
    return list(pairs.values())


def gap_distance(gap: VersionGap) -> str:
    """``4.0 ulp``; ``bit-identical`` where no entry differs; ``not measured`` where entries
    differ but the distance has no value."""
    if gap.differing == 0:
        return "bit-identical"
    if not math.isfinite(gap.ulps):
        return "not measured"
    return f"{ulps(gap.ulps)} ulp"


def gap_figures(gap: VersionGap) -> str:
    """``4.0 ulp (3 of 8 entries)``: the distance and, where entries differ, how many."""
    if gap.differing == 0:
        return gap_distance(gap)
    return f"{gap_distance(gap)} ({gap.differing} of {plural(gap.total, 'entry', 'entries')})"


def quantities_text(comparison: VersionComparison) -> str:
    """``dW1 4.0 ulp (3 of 8 entries); trajectory cost 1,200 ulp (5 of 8 entries); the 6 other
    quantities bit-identical``: each quantity that differs, then how many do not."""
    apart = [f"{gap.quantity} {gap_figures(gap)}" for gap in comparison.quantities if gap.differing]
    if not apart:
        return f"every quantity bit-identical ({len(comparison.quantities)})"
    return _apart_then_others(apart, len(comparison.quantities), ("other quantity", "other quantities"))


def op_figures(op: OpGap) -> str:
    """``1.1e-16 → 2.2e-16``: an op's relative error against NumPy float64 in each version."""
    return " → ".join(map(sci, op.rel_errors))


def ops_text(comparison: VersionComparison) -> str:
    """``ops that differ: tanh 1.1e-16 → 2.2e-16 relative; the 3 other ops bit-identical``, or
    ``every probed op bit-identical (4)``, or ``no op probed``."""
    if not comparison.ops:
        return "no op probed"
    apart = [f"{op.op} {op_figures(op)} relative" for op in comparison.ops if not op.identical]
    if not apart:
        return f"every probed op bit-identical ({len(comparison.ops)})"
    return "ops that differ: " + _apart_then_others(apart, len(comparison.ops), ("other op", "other ops"))


def _apart_then_others(apart: list[str], total: int, other: tuple[str, str]) -> str:
    """The things that differ, each said, then ``the 6 other quantities bit-identical`` (of
    ``total`` in all; ``other``: the word for one and for several)."""
    same = total - len(apart)
    if same:
        apart = [*apart, f"the {plural(same, *other)} bit-identical"]
    return "; ".join(apart)
