"""gradparity.core.datasets: shapes, label encodings, determinism, the flower recipe and every refusal."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradparity.core.datasets import DATASETS, check_data, load_dataset, load_file, one_hot
from gradparity.core.errors import DataError

ROOT = Path(__file__).resolve().parents[1]

# name -> (n_features, m, n_classes)
SHAPES = {
    "flower": (2, 400, 2),
    "moons": (2, 400, 2),
    "circles": (2, 400, 2),
    "xor": (2, 400, 2),
    "blobs": (2, 300, 3),
    "breast-cancer": (30, 569, 2),
    "digits": (64, 1797, 10),
    "signs-synthetic": (12288, 1080, 6),
}
SYNTHETIC = ("moons", "circles", "xor", "blobs", "signs-synthetic")
FIXED = ("flower", "breast-cancer", "digits")
BINARY = tuple(name for name, (_, _, k) in SHAPES.items() if k == 2)
MULTI = tuple(name for name, (_, _, k) in SHAPES.items() if k > 2)


def test_catalogue_names() -> None:
    assert DATASETS == tuple(SHAPES)


@pytest.mark.parametrize("name", DATASETS)
def test_softmax_ce_gives_one_hot_columns(name: str) -> None:
    n_features, m, n_classes = SHAPES[name]
    X, Y = load_dataset(name, "softmax-ce")
    assert X.shape == (n_features, m) and Y.shape == (n_classes, m)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    assert set(np.unique(Y)) == {0.0, 1.0}
    np.testing.assert_array_equal(Y.sum(axis=0), np.ones(m))
    assert (Y.sum(axis=1) > 0).all()  # every class occurs
    check_data(X, Y, "softmax-ce")


@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("name", BINARY)
def test_binary_sets_give_one_label_row_for_sigmoid_losses(name: str, loss: str) -> None:
    n_features, m, _ = SHAPES[name]
    X, Y = load_dataset(name, loss)
    assert X.shape == (n_features, m) and Y.shape == (1, m)
    assert set(np.unique(Y)) == {0.0, 1.0}
    _, Y_softmax = load_dataset(name, "softmax-ce")
    np.testing.assert_array_equal(Y_softmax, np.vstack([1 - Y, Y]))


@pytest.mark.parametrize("loss", ["bce", "mse"])
@pytest.mark.parametrize("name", MULTI)
def test_multi_class_sets_give_one_hot_rows_for_sigmoid_losses(name: str, loss: str) -> None:
    _, m, n_classes = SHAPES[name]
    _, Y = load_dataset(name, loss)
    _, Y_softmax = load_dataset(name, "softmax-ce")
    assert Y.shape == (n_classes, m)
    np.testing.assert_array_equal(Y, Y_softmax)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_sets_follow_the_seed(name: str) -> None:
    X0, Y0 = load_dataset(name, "bce", seed=0)
    X0_again, Y0_again = load_dataset(name, "bce", seed=0)
    X1, _ = load_dataset(name, "bce", seed=1)
    np.testing.assert_array_equal(X0, X0_again)
    np.testing.assert_array_equal(Y0, Y0_again)
    assert not np.array_equal(X0, X1)


@pytest.mark.parametrize("name", FIXED)
def test_fixed_sets_ignore_the_seed(name: str) -> None:
    X0, Y0 = load_dataset(name, "bce", seed=0)
    X7, Y7 = load_dataset(name, "bce", seed=7)
    np.testing.assert_array_equal(X0, X7)
    np.testing.assert_array_equal(Y0, Y7)


def legacy_flower() -> tuple[np.ndarray, np.ndarray]:
    """The planar flower written the classic way, on the global legacy RNG (restored afterwards)."""
    saved = np.random.get_state()
    try:
        np.random.seed(1)
        m, N, a = 400, 200, 4
        X = np.zeros((m, 2))
        Y = np.zeros((m, 1), dtype="uint8")
        for j in range(2):
            ix = range(N * j, N * (j + 1))
            t = np.linspace(j * 3.12, (j + 1) * 3.12, N) + np.random.randn(N) * 0.2
            r = a * np.sin(4 * t) + np.random.randn(N) * 0.2
            X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
            Y[ix] = j
    finally:
        np.random.set_state(saved)
    return X.T, Y.T


def test_flower_is_bit_identical_to_the_legacy_procedure() -> None:
    X_legacy, Y_legacy = legacy_flower()
    X, Y = load_dataset("flower", "bce")
    assert X.shape == X_legacy.shape == (2, 400)
    assert np.ascontiguousarray(X).tobytes() == np.ascontiguousarray(X_legacy).tobytes()
    np.testing.assert_array_equal(Y, Y_legacy.astype(np.float64))
    assert Y[0, :200].sum() == 0 and Y[0, 200:].sum() == 200  # class 0 first


def test_flower_leaves_the_global_random_state_alone() -> None:
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    load_dataset("flower")
    np.testing.assert_array_equal(np.random.rand(3), expected)


def test_breast_cancer_is_standardised() -> None:
    X, Y = load_dataset("breast-cancer", "bce")
    np.testing.assert_allclose(X.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=1), 1.0, rtol=1e-12)
    assert int(Y.sum()) == 357  # benign (class 1); 212 malignant


def test_digits_are_scaled_pixels_with_ten_classes() -> None:
    X, Y = load_dataset("digits", "softmax-ce")
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))  # sixteenths of the 0..16 grey levels
    np.testing.assert_array_equal(Y.sum(axis=1), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


def test_signs_synthetic_is_pixel_like_and_separable() -> None:
    X, Y = load_dataset("signs-synthetic", "softmax-ce")
    assert 0.0 <= X.min() and X.max() <= 1.0
    np.testing.assert_array_equal(Y.sum(axis=1), np.full(6, 180))
    classes = Y.argmax(axis=0)
    train = np.arange(X.shape[1]) % 2 == 0
    centroids = (X[:, train] @ Y[:, train].T) / Y[:, train].sum(axis=1)
    distances = ((X[:, ~train, None] - centroids[:, None, :]) ** 2).sum(axis=0)
    accuracy = (distances.argmin(axis=1) == classes[~train]).mean()
    assert accuracy > 0.9


def test_unknown_dataset_lists_the_choices() -> None:
    with pytest.raises(DataError, match=r"unknown dataset 'iris'; choose one of flower, moons, .*signs-synthetic"):
        load_dataset("iris")


# one_hot


def test_one_hot_values() -> None:
    expected = np.array([[0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]], dtype=np.float64)
    np.testing.assert_array_equal(one_hot(np.array([1, 0, 3, 1])), expected)
    np.testing.assert_array_equal(one_hot(np.array([1.0, 0.0]), n_classes=3), [[0, 1], [1, 0], [0, 0]])


@given(st.lists(st.integers(0, 9), min_size=1, max_size=50))
def test_one_hot_inverts_argmax(labels: list[int]) -> None:
    Y = one_hot(np.array(labels), n_classes=10)
    assert Y.shape == (10, len(labels))
    np.testing.assert_array_equal(Y.argmax(axis=0), labels)
    np.testing.assert_array_equal(Y.sum(axis=0), np.ones(len(labels)))


@pytest.mark.parametrize(
    ("labels", "n_classes", "match"),
    [
        (np.array([0, -1]), None, r"integers >= 0, found -1"),
        (np.array([0.0, 1.5]), None, r"integers >= 0, found 1\.5"),
        (np.array([0, 3]), 3, r"class label 3 does not fit 3 classes"),
        (np.zeros((2, 2)), None, r"1-D vector, got shape \(2, 2\)"),
    ],
)
def test_one_hot_refuses_non_class_labels(labels: np.ndarray, n_classes: int | None, match: str) -> None:
    with pytest.raises(DataError, match=match):
        one_hot(labels, n_classes)


# check_data


GOOD_X = np.arange(6.0).reshape(2, 3)


def test_check_data_accepts_good_data() -> None:
    assert check_data(GOOD_X, np.array([[0.0, 1.0, 0.25]]), "mse") is None
    assert check_data(GOOD_X, one_hot(np.array([0, 2, 1])), "softmax-ce") is None


@pytest.mark.parametrize(
    ("X", "Y", "loss", "match"),
    [
        (np.arange(3.0), np.ones((1, 3)), "bce", r"X must be 2-D .*got shape \(3,\)"),
        (GOOD_X, np.ones(3), "bce", r"Y must be 2-D .*got shape \(3,\)"),
        (GOOD_X, np.ones((1, 4)), "bce", r"X has shape \(2, 3\) and Y has shape \(1, 4\).*number of examples"),
        (np.ones((2, 0)), np.ones((1, 0)), "bce", r"empty dataset: X has shape \(2, 0\)"),
        (np.ones((0, 3)), np.ones((1, 3)), "bce", r"empty dataset: X has shape \(0, 3\)"),
        (np.array([[0.0, np.nan, 1.0]]), np.ones((1, 3)), "bce", r"X holds NaN or infinite values, first at index \(0, 1\)"),
        (GOOD_X, np.array([[0.0, 1.0, np.inf]]), "mse", r"Y holds NaN or infinite values, first at index \(0, 2\)"),
        (GOOD_X.astype(str), np.ones((1, 3)), "bce", r"X must hold numbers, got dtype <U"),
        (GOOD_X, np.array([[0.0, 2.0, 1.0]]), "bce", r"bce labels must lie in \[0, 1\], but Y ranges from 0 to 2"),
        (GOOD_X, np.array([[0.0, -0.5, 1.0]]), "mse", r"mse labels must lie in \[0, 1\], but Y ranges from -0.5 to 1"),
        (GOOD_X, np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]]), "softmax-ce", r"one-hot.*no soft labels.*column 1 of Y is \[0\.5, 0\.5\]"),
        (GOOD_X, np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]), "softmax-ce", r"one-hot.*column 2 of Y is \[1\.0, 1\.0\]"),
        (GOOD_X, np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), "softmax-ce", r"one-hot.*column 1 of Y is \[0\.0, 0\.0\]"),
    ],
)
def test_check_data_refuses(X: np.ndarray, Y: np.ndarray, loss: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        check_data(X, Y, loss)


LAYOUT = r"gradparity wants one example per column, X \(n_features, m\) and Y \(n_outputs, m\)"


@pytest.mark.parametrize(
    ("x_shape", "y_shape", "diagnosis", "fix"),
    [
        ((50, 3), (50, 1), "X (50, 3) and Y (50, 1) hold the 50 examples as rows", "X.T and Y.T"),
        ((50, 2), (1, 50), "X (50, 2) holds the 50 examples as rows (Y (1, 50) has them as columns)", "X.T"),
        ((2, 50), (50, 1), "Y (50, 1) holds the 50 examples as rows (X (2, 50) has them as columns)", "Y.T"),
        # X.T alone would leave a single example, so Y.T is the one reading
        ((1, 5), (5, 1), "Y (5, 1) holds the 5 examples as rows (X (1, 5) has them as columns)", "Y.T"),
    ],
)
def test_check_data_names_the_transposed_arrays(
    x_shape: tuple[int, int], y_shape: tuple[int, int], diagnosis: str, fix: str
) -> None:
    X, Y = np.ones(x_shape), np.ones(y_shape)
    with pytest.raises(DataError, match=f"^{re.escape(diagnosis + '; ')}{LAYOUT}{re.escape(': pass ' + fix)}$"):
        check_data(X, Y, "bce")
    assert check_data(X.T if "X.T" in fix else X, Y.T if "Y.T" in fix else Y, "bce") is None  # the advice works


@pytest.mark.parametrize(
    ("x_shape", "y_shape"),
    [
        ((3, 3), (3, 1)),  # X.T with Y.T, or Y.T alone: ambiguous
        ((4, 4), (1, 5)),  # no transposition fits
        ((0, 3), (0, 5)),  # "both transposed" would leave no examples
    ],
)
def test_check_data_states_the_layout_when_no_transposition_fits_uniquely(
    x_shape: tuple[int, int], y_shape: tuple[int, int]
) -> None:
    plain = f"X has shape {x_shape} and Y has shape {y_shape}: they differ in the number of examples (columns); "
    with pytest.raises(DataError, match="^" + re.escape(plain) + LAYOUT + "$"):
        check_data(np.ones(x_shape), np.ones(y_shape), "bce")


# load_file


def test_npz_round_trip(tmp_path: Path) -> None:
    X, Y = load_dataset("blobs", "softmax-ce", seed=3)
    path = tmp_path / "blobs.npz"
    np.savez(path, X=X, Y=Y)
    X_read, Y_read = load_file(path, "softmax-ce")
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(Y_read, Y)


def test_npz_integer_class_row_becomes_one_hot_for_softmax_ce(tmp_path: Path) -> None:
    path = tmp_path / "classes.npz"
    np.savez(path, X=GOOD_X, Y=np.array([[2, 0, 1]]))
    X, Y = load_file(str(path), "softmax-ce")
    np.testing.assert_array_equal(Y, [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(X, GOOD_X)
    with pytest.raises(DataError, match=r"classes\.npz: bce labels must lie in \[0, 1\], but Y ranges from 0 to 2"):
        load_file(path, "bce")


def test_csv_round_trip(tmp_path: Path) -> None:
    X, Y = load_dataset("moons", "bce", seed=2)
    path = tmp_path / "moons.csv"
    np.savetxt(path, np.vstack([X, Y]).T, delimiter=",", header="x1,x2,label")
    X_read, Y_read = load_file(path, "bce")
    np.testing.assert_array_equal(X_read, X)
    np.testing.assert_array_equal(Y_read, Y)
    _, Y_softmax = load_file(path, "softmax-ce")
    np.testing.assert_array_equal(Y_softmax, np.vstack([1 - Y, Y]))


def test_csv_class_labels_become_one_hot_for_softmax_ce(tmp_path: Path) -> None:
    path = tmp_path / "three.csv"
    path.write_text("0.5,1,2\n\n-1,2.5,0\n3,4,1\n")
    X, Y = load_file(path, "softmax-ce")
    np.testing.assert_array_equal(X, [[0.5, -1, 3], [1, 2.5, 4]])
    np.testing.assert_array_equal(Y, [[0, 1, 0], [0, 0, 1], [1, 0, 0]])


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data file .*nothere\.npz not found"):
        load_file(tmp_path / "nothere.npz")


def test_unknown_extension(tmp_path: Path) -> None:
    path = _write(tmp_path, "data.txt", "1,2,0\n")
    with pytest.raises(DataError, match=r"data\.txt has unknown extension '\.txt'; use \.npz"):
        load_file(path)


def test_npz_without_y(tmp_path: Path) -> None:
    path = tmp_path / "onlyx.npz"
    np.savez(path, X=GOOD_X, labels=np.ones((1, 3)))
    with pytest.raises(DataError, match=r"onlyx\.npz has no array Y \(found X, labels\)"):
        load_file(path)


def test_npz_that_is_not_an_archive(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.npz", "not a zip file")
    with pytest.raises(DataError, match=r"broken\.npz is not a readable \.npz"):
        load_file(path)


def test_csv_non_numeric_cell_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", "# x1,x2,label\n1,2,0\n3,abc,1\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 3, column 2: 'abc' is not a number"):
        load_file(path)


HEADERLESS = "0.5,1,0\n-1,2.5,1\n3,4,1\n"


@pytest.mark.parametrize(
    "first_line",
    [
        "x1,x2,label\n",
        '"x1","x2","label"\n',
        ' "x 1" , "weight, kg" ,label \n',
        "\ufeffx1,x2,label\n",  # byte-order mark
        ",x2,label\n",  # an empty cell among names
        "\ufeff",  # byte-order mark on a headerless file
    ],
)
def test_csv_header_row_is_detected(tmp_path: Path, first_line: str) -> None:
    expected = load_file(_write(tmp_path, "plain.csv", HEADERLESS))
    path = tmp_path / "named.csv"
    path.write_text(first_line + HEADERLESS, encoding="utf-8")
    X, Y = load_file(path)
    assert X.shape == (2, 3)
    np.testing.assert_array_equal(X, expected[0])
    np.testing.assert_array_equal(Y, expected[1])


def test_csv_header_true_skips_a_numeric_first_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "data.csv", "# names follow\n\n7,8,1\n" + HEADERLESS)
    X, Y = load_file(path, header=True)
    np.testing.assert_array_equal(X, [[0.5, -1, 3], [1, 2.5, 4]])
    np.testing.assert_array_equal(Y, [[0, 1, 1]])
    np.testing.assert_array_equal(load_file(path)[0][:, 0], [7, 8])  # auto keeps a numeric first line


def test_csv_header_false_reads_the_first_line_as_data(tmp_path: Path) -> None:
    assert load_file(_write(tmp_path, "plain.csv", HEADERLESS), header=False)[0].shape == (2, 3)
    path = _write(tmp_path, "named.csv", "x1,x2,label\n" + HEADERLESS)
    message = "line 1, column 1: 'x1' is not a number (header row off, so the first line is read as data, not as column names)"
    with pytest.raises(DataError, match=re.escape(message) + "$"):
        load_file(path, header=False)


@pytest.mark.parametrize("header", [None, True])
def test_csv_non_number_below_the_header_names_line_and_column(tmp_path: Path, header: bool | None) -> None:
    path = _write(tmp_path, "bad.csv", "x1,x2,label\n1,2,0\n3,abc,1\n")
    with pytest.raises(DataError, match=r"bad\.csv, line 3, column 2: 'abc' is not a number$"):
        load_file(path, header=header)


def test_csv_first_line_with_a_missing_value_is_data_not_a_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "gap.csv", "1,,0\n" + HEADERLESS)
    with pytest.raises(DataError, match=r"gap\.csv, line 1, column 2: '' is not a number$"):
        load_file(path)


def test_csv_with_only_a_header_row(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"names\.csv holds no rows below its header row$"):
        load_file(_write(tmp_path, "names.csv", "x1,x2,label\n"))


def test_npz_refuses_a_header_row(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, X=GOOD_X, Y=np.ones((1, 3)))
    with pytest.raises(DataError, match=r"^data file .*data\.npz: a header row applies to \.csv files only$"):
        load_file(path, header=True)
    for header in (None, False):
        np.testing.assert_array_equal(load_file(path, header=header)[0], GOOD_X)


def test_npz_with_examples_as_rows_is_named(tmp_path: Path) -> None:
    X, Y = load_dataset("moons", "bce")
    path = tmp_path / "rows.npz"
    np.savez(path, X=X.T, Y=Y.T)
    with pytest.raises(DataError, match=r"rows\.npz: X \(400, 2\) and Y \(400, 1\) hold the 400 examples as rows"):
        load_file(path)


@pytest.mark.parametrize(
    ("text", "loss", "match"),
    [
        ("1,2,0\n3,1\n", "bce", r"line 2: 2 columns, earlier rows have 3"),
        ("# only a comment\n\n", "bce", r"holds no rows"),
        ("0\n1\n", "bce", r"needs at least one feature column and a label column"),
        ("1,2,0\n3,4,3\n", "bce", r"bce labels must lie in \[0, 1\], but Y ranges from 0 to 3"),
        ("1,2,0\n3,4,nan\n", "mse", r"Y holds NaN or infinite values"),
        ("1,2,0\n3,4,0.5\n", "softmax-ce", r"integers >= 0, found 0\.5 \(softmax-ce reads the labels as classes\)"),
    ],
)
def test_csv_refusals_name_the_file(tmp_path: Path, text: str, loss: str, match: str) -> None:
    path = _write(tmp_path, "data.csv", text)
    with pytest.raises(DataError, match=r"data file .*data\.csv.*" + match):
        load_file(path, loss)


def test_import_pulls_in_no_framework_or_sklearn() -> None:
    code = (
        "import sys, core.datasets as d; d.load_dataset('flower'); d.load_dataset('signs-synthetic'); "
        "print(sorted(m for m in ('sklearn', 'jax', 'torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
