"""Datasets in the column layout: ``X`` is ``(n_features, m)``, ``Y`` is ``(n_outputs, m)``.

Labels follow the loss:

    softmax-ce   one-hot columns, ``Y`` is ``(n_classes, m)``; a binary set has 2 rows
    bce, mse     a binary set gives one 0/1 row ``(1, m)``; a multi-class set gives one-hot
                 rows (one sigmoid output per class)

Only NumPy is imported here; scikit-learn is imported when a bundled sklearn set is loaded.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable

import numpy as np

from gradparity.core.errors import DataError
from gradparity.core.network import LOSSES, check_choice

# A generator returns points (n_features, m), integer classes (m,) and the number of classes.
Generated = tuple[np.ndarray, np.ndarray, int]


def one_hot(labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """The ``(n_classes, m)`` float64 matrix with ``Y[labels[i], i] = 1`` and zeros elsewhere.

    ``labels`` is a 1-D vector of nonnegative integers (integer-valued floats are accepted);
    ``n_classes`` defaults to ``max(labels) + 1``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"class labels must be a 1-D vector, got shape {labels.shape}")
    classes = _class_indices(labels)
    if n_classes is None:
        n_classes = int(classes.max()) + 1 if classes.size else 0
    if classes.size and classes.max() >= n_classes:
        raise DataError(f"class label {int(classes.max())} does not fit {n_classes} classes")
    Y = np.zeros((n_classes, classes.size))
    Y[classes, np.arange(classes.size)] = 1.0
    return Y


def _class_indices(labels: np.ndarray) -> np.ndarray:
    """``labels`` as int64 class indices; DataError unless every value is an integer >= 0."""
    if labels.dtype.kind not in "biuf":
        raise DataError(f"class labels must be numbers, got dtype {labels.dtype}")
    valid = np.isfinite(labels) & (labels >= 0) & (labels == np.round(labels))
    if not valid.all():
        bad = labels[~valid][0].item()
        raise DataError(f"class labels must be integers >= 0, found {bad!r}")
    return labels.astype(np.int64)


def _encode_labels(classes: np.ndarray, n_classes: int, loss: str) -> np.ndarray:
    """Targets ``Y`` for integer ``classes`` (m,) under ``loss`` (see the module docstring).

    ``softmax-ce`` gives ``one_hot(classes, n_classes)``; ``bce``/``mse`` give the row
    ``classes`` (1, m) when ``n_classes == 2`` and ``one_hot`` rows otherwise.
    """
    check_choice("loss", loss, LOSSES)
    if loss != "softmax-ce" and n_classes == 2:
        return _class_indices(np.asarray(classes)).astype(np.float64)[np.newaxis, :]
    return one_hot(classes, n_classes)


# Generators: each takes a seed and returns (points, classes, n_classes).


def _flower(seed: int) -> Generated:
    """The planar "flower" of the course, fixed regardless of ``seed``: m = 400, N = 200 per class.

    With ``rng = RandomState(1)`` and for class j = 0 then 1:
    ``t = linspace(3.12 j, 3.12 (j + 1), N) + 0.2 randn(N)``, ``r = 4 sin(4 t) + 0.2 randn(N)``,
    points ``(r sin t, r cos t)``.
    """
    rng = np.random.RandomState(1)
    n = 200
    petals = []
    for j in range(2):
        t = np.linspace(j * 3.12, (j + 1) * 3.12, n) + rng.randn(n) * 0.2
        r = 4 * np.sin(4 * t) + rng.randn(n) * 0.2
        petals.append(np.stack([r * np.sin(t), r * np.cos(t)]))
    return np.concatenate(petals, axis=1), np.repeat(np.arange(2), n), 2


def _moons(seed: int) -> Generated:
    """Two interleaved half circles, 200 points each, plus N(0, 0.1^2) noise on both coordinates.

    Class 0: ``(cos t, sin t)``; class 1: ``(1 - cos t, 0.5 - sin t)``; t ~ U(0, pi).
    """
    rng = np.random.default_rng(seed)
    n = 200
    t = rng.uniform(0.0, np.pi, (2, n))
    upper = np.stack([np.cos(t[0]), np.sin(t[0])])
    lower = np.stack([1.0 - np.cos(t[1]), 0.5 - np.sin(t[1])])
    points = np.concatenate([upper, lower], axis=1) + rng.normal(0.0, 0.1, (2, 2 * n))
    return points, np.repeat(np.arange(2), n), 2


def _circles(seed: int) -> Generated:
    """Two concentric circles, 200 points each: class 0 radius 1, class 1 radius 0.5.

    Points ``(rho cos t, rho sin t)`` with t ~ U(0, 2 pi), plus N(0, 0.05^2) noise.
    """
    rng = np.random.default_rng(seed)
    n = 200
    t = rng.uniform(0.0, 2 * np.pi, 2 * n)
    rho = np.repeat([1.0, 0.5], n)
    points = np.stack([rho * np.cos(t), rho * np.sin(t)]) + rng.normal(0.0, 0.05, (2, 2 * n))
    return points, np.repeat(np.arange(2), n), 2


def _xor(seed: int) -> Generated:
    """Four Gaussian clusters (std 0.35) of 100 points at ``(+-1, +-1)``; class 1 where the signs differ."""
    rng = np.random.default_rng(seed)
    n = 100
    centres = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]])
    points = np.repeat(centres, n, axis=1) + rng.normal(0.0, 0.35, (2, 4 * n))
    return points, np.repeat([0, 0, 1, 1], n), 2


def _blobs(seed: int) -> Generated:
    """Three Gaussian clusters (std 0.6) of 100 points, centred at radius 2 and angles 90, 210, 330 degrees."""
    rng = np.random.default_rng(seed)
    n = 100
    angles = np.deg2rad([90.0, 210.0, 330.0])
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)])
    points = np.repeat(centres, n, axis=1) + rng.normal(0.0, 0.6, (2, 3 * n))
    return points, np.repeat(np.arange(3), n), 3


def _load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The bundled scikit-learn set ``name`` (no network) as float64 features (m, n) and classes (m,)."""
    try:
        from sklearn import datasets as sklearn_datasets
    except ImportError as error:
        raise DataError(f"dataset {name!r} needs scikit-learn, which is not installed") from error
    loader = {"breast-cancer": sklearn_datasets.load_breast_cancer, "digits": sklearn_datasets.load_digits}[name]
    features, classes = loader(return_X_y=True)
    return np.asarray(features, dtype=np.float64), np.asarray(classes)


def _breast_cancer(seed: int) -> Generated:
    """Wisconsin breast cancer, fixed: 30 features standardised, ``(x - mean) / std`` per feature, m = 569."""
    features, classes = _load_sklearn("breast-cancer")
    standardised = (features - features.mean(axis=0)) / features.std(axis=0)
    return standardised.T, classes, 2


def _digits(seed: int) -> Generated:
    """8x8 handwritten digits, fixed: 64 pixels divided by 16 into [0, 1], m = 1797, 10 classes."""
    features, classes = _load_sklearn("digits")
    return features.T / 16.0, classes, 10


def _signs_synthetic(seed: int) -> Generated:
    """A stand-in for the SIGNS images: 6 classes of 180 flattened 64x64x3 "images", m = 1080.

    Column i of class k is ``0.1 P[:, k] + 0.9 U[:, i]`` with a class pattern P ~ U(0, 1)
    (12288, 6) and pixel noise U ~ U(0, 1), so every value lies in [0, 1]; classes come in blocks.
    """
    rng = np.random.default_rng(seed)
    n_pixels, n_classes, per_class = 64 * 64 * 3, 6, 180
    patterns = rng.random((n_pixels, n_classes))
    images = rng.random((n_pixels, n_classes * per_class))
    images *= 0.9
    for k in range(n_classes):
        images[:, k * per_class:(k + 1) * per_class] += 0.1 * patterns[:, k:k + 1]
    return images, np.repeat(np.arange(n_classes), per_class), n_classes


_GENERATORS: dict[str, Callable[[int], Generated]] = {
    "flower": _flower,
    "moons": _moons,
    "circles": _circles,
    "xor": _xor,
    "blobs": _blobs,
    "breast-cancer": _breast_cancer,
    "digits": _digits,
    "signs-synthetic": _signs_synthetic,
}
DATASETS: tuple[str, ...] = tuple(_GENERATORS)


def load_dataset(name: str, loss: str = "bce", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``X`` (n_features, m) and ``Y`` encoded for ``loss`` of the dataset ``name``.

    ``seed`` drives the synthetic sets (moons, circles, xor, blobs, signs-synthetic);
    flower, breast-cancer and digits are fixed and ignore it. Shapes:
    flower (2, 400), moons/circles/xor (2, 400), blobs (2, 300) with 3 classes,
    breast-cancer (30, 569), digits (64, 1797) with 10 classes,
    signs-synthetic (12288, 1080) with 6 classes.
    """
    if name not in _GENERATORS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    check_choice("loss", loss, LOSSES)
    X, classes, n_classes = _GENERATORS[name](seed)
    return X, _encode_labels(classes, n_classes, loss)


def load_file(
    path: str | os.PathLike[str], loss: str = "bce", header: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``X`` (n_features, m) and ``Y`` (n_outputs, m) read from a ``.npz`` or ``.csv`` file.

    ``.npz``: arrays ``X`` and ``Y`` already in the column layout, used as given, except that a
    single-row ``Y`` of integer classes is one-hot encoded when ``loss`` is ``softmax-ce``.
    ``.csv``: one example per row, comma-separated numbers (quotes and spaces around cells
    allowed), the label in the last column, blank lines and lines starting with ``#`` skipped;
    labels are one-hot encoded for ``softmax-ce`` and kept as a row (1, m) for ``bce``/``mse``.
    ``header`` says whether the first remaining line (a UTF-8 byte-order mark dropped) names the
    columns: True skips it, False reads it as data, None skips it when one of its cells is text
    (neither a number nor empty). ``header=True`` is refused for ``.npz``. The result passes
    :func:`check_data`.
    """
    check_choice("loss", loss, LOSSES)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if header:
            raise DataError(f"data file {path}: a header row applies to .csv files only")
        X, Y = _read_npz(path)
    elif suffix == ".csv":
        X, Y = _read_csv(path, header)
    else:
        raise DataError(f"data file {path} has unknown extension {suffix!r}; use .npz (arrays X, Y) or .csv")
    if loss == "softmax-ce" and Y.ndim == 2 and Y.shape[0] == 1:
        Y = _file_classes_one_hot(path, Y[0])
    try:
        check_data(X, Y, loss)
    except DataError as error:
        raise DataError(f"data file {path}: {error}") from None
    return X, Y


def _file_classes_one_hot(path: Path, labels: np.ndarray) -> np.ndarray:
    """``one_hot(labels)`` of a file's single label row; DataError naming the file otherwise."""
    try:
        return one_hot(labels)
    except DataError as error:
        raise DataError(f"data file {path}: {error} (softmax-ce reads the labels as classes)") from None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``X`` and ``Y`` of an ``.npz`` archive as float64."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("X", "Y") if key not in archive.files]
            if missing:
                found = ", ".join(archive.files) or "nothing"
                raise DataError(f"data file {path} has no array {' or '.join(missing)} (found {found})")
            return np.asarray(archive["X"], dtype=np.float64), np.asarray(archive["Y"], dtype=np.float64)
    except DataError:
        raise
    except (OSError, ValueError, TypeError) as error:
        raise DataError(f"data file {path} is not a readable .npz of numeric arrays X, Y: {error}") from None


_FIRST_LINE_IS_DATA = " (header row off, so the first line is read as data, not as column names)"


def _read_csv(path: Path, header: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, m) from all but the last column and the label row (1, m) from the last.

    ``header`` as in :func:`load_file`; DataError naming the line of a ragged row or the line and
    column of a non-number.
    """
    lines = _csv_lines(path)
    if header is None:
        skip = bool(lines) and any(cell and not _is_number(cell) for cell in lines[0][1])
    else:
        skip = header
    hint = _FIRST_LINE_IS_DATA if header is False else ""
    rows: list[list[float]] = []
    for number, cells in lines[1:] if skip else lines:
        row = _parse_csv_cells(path, number, cells, "" if rows else hint)
        if rows and len(row) != len(rows[0]):
            raise DataError(f"data file {path}, line {number}: {len(row)} columns, earlier rows have {len(rows[0])}")
        rows.append(row)
    if not rows:
        raise DataError(f"data file {path} holds no rows" + (" below its header row" if lines else ""))
    if len(rows[0]) < 2:
        raise DataError(f"data file {path} needs at least one feature column and a label column")
    table = np.array(rows, dtype=np.float64)
    return np.ascontiguousarray(table[:, :-1].T), np.ascontiguousarray(table[:, -1:].T)


def _csv_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, cells) of each line of a UTF-8 CSV that is neither blank nor a ``#`` comment.

    A leading byte-order mark is dropped; cells are unquoted and stripped of surrounding spaces.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"data file {path} cannot be read: {error}") from None
    return [
        (number, [cell.strip() for cell in next(csv.reader([line], skipinitialspace=True))])
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _parse_csv_cells(path: Path, number: int, cells: list[str], hint: str) -> list[float]:
    """The numbers of one CSV line; DataError naming the line and column of a non-number, then ``hint``."""
    try:
        return [float(cell) for cell in cells]
    except ValueError:
        column = next(index for index, cell in enumerate(cells, start=1) if not _is_number(cell))
        raise DataError(
            f"data file {path}, line {number}, column {column}: {cells[column - 1]!r} is not a number{hint}"
        ) from None


def _is_number(cell: str) -> bool:
    """Whether ``float(cell)`` succeeds."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def check_data(X: np.ndarray, Y: np.ndarray, loss: str) -> None:
    """Raise DataError unless ``X`` (n, m) and ``Y`` (k, m) are finite, non-empty and fit ``loss``.

    ``bce``/``mse`` need every label in [0, 1]; ``softmax-ce`` needs one-hot columns
    (exactly one 1 and zeros elsewhere; soft labels are refused).
    """
    check_choice("loss", loss, LOSSES)
    for label, array in (("X", X), ("Y", Y)):
        if np.ndim(array) != 2:
            raise DataError(f"{label} must be 2-D (rows, examples), got shape {np.shape(array)}")
    if X.shape[1] != Y.shape[1]:
        raise DataError(_examples_mismatch(X.shape, Y.shape))
    if 0 in X.shape or 0 in Y.shape:
        raise DataError(f"empty dataset: X has shape {X.shape}, Y has shape {Y.shape}")
    for label, array in (("X", X), ("Y", Y)):
        _check_finite(label, array)
    if loss == "softmax-ce":
        _check_one_hot(Y)
    elif Y.min() < 0 or Y.max() > 1:
        raise DataError(f"{loss} labels must lie in [0, 1], but Y ranges from {Y.min():g} to {Y.max():g}")


def _examples_mismatch(x_shape: tuple[int, int], y_shape: tuple[int, int]) -> str:
    """The message for X and Y whose numbers of columns differ, naming any array that holds examples as rows.

    Of the readings "X.T and Y.T", "X.T" and "Y.T", the one under which both arrays hold the same
    number (> 1) of examples is named when it is the only such reading; otherwise (none, or an
    ambiguous square shape) the message states the shapes and the expected layout.
    """
    (x_rows, x_columns), (y_rows, y_columns) = x_shape, y_shape
    readings = [(("X", "Y"), x_rows, y_rows), (("X",), x_rows, y_columns), (("Y",), y_rows, x_columns)]
    fits = [(names, m) for names, m, other_m in readings if m == other_m and m > 1]
    layout = "gradparity wants one example per column, X (n_features, m) and Y (n_outputs, m)"
    if len(fits) != 1:
        return (
            f"X has shape {x_shape} and Y has shape {y_shape}: "
            f"they differ in the number of examples (columns); {layout}"
        )
    names, m = fits[0]
    shapes = {"X": x_shape, "Y": y_shape}
    subject = " and ".join(f"{name} {shapes[name]}" for name in names)
    verb = "hold" if len(names) == 2 else "holds"
    aside = "".join(f" ({name} {shape} has them as columns)" for name, shape in shapes.items() if name not in names)
    fix = " and ".join(f"{name}.T" for name in names)
    return f"{subject} {verb} the {m} examples as rows{aside}; {layout}: pass {fix}"


def _check_finite(label: str, array: np.ndarray) -> None:
    """DataError unless ``array`` is numeric with no NaN or infinity; names the first bad index."""
    if array.dtype.kind not in "biuf":
        raise DataError(f"{label} must hold numbers, got dtype {array.dtype}")
    if not np.isfinite(array).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise DataError(f"{label} holds NaN or infinite values, first at index {index}: {array[index].item()}")


def _check_one_hot(Y: np.ndarray) -> None:
    """DataError naming the first column of ``Y`` that is not exactly one 1 among zeros."""
    ok = ((Y == 0) | (Y == 1)).all(axis=0) & (Y.sum(axis=0) == 1)
    if not ok.all():
        column = int(np.argmin(ok))
        raise DataError(
            f"softmax-ce labels must be one-hot columns (exactly one 1, zeros elsewhere; no soft labels); "
            f"column {column} of Y is {Y[:, column].tolist()}"
        )
