"""Datasets available offline: seeded synthetic ones, scikit-learn's shipped ones, and user files.

Every loader returns a :class:`Table`: features ``X`` (float32, shape (N, D)), targets ``y``
(int64 class indices for classification, float32 (N, 1) for regression) and what the task is.

Example:
    >>> from downslope.data import datasets
    >>> t = datasets.load("moons", n_samples=100, seed=0)
    >>> t.X.shape, t.task, t.n_classes
    ((100, 2), 'classification', 2)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, StateError


@dataclass
class Table:
    """Features and targets of one dataset, plus what a model needs to know about them."""

    X: np.ndarray
    y: np.ndarray
    task: str  # "classification" or "regression"
    name: str = "data"
    feature_names: list[str] = field(default_factory=list)
    target_name: str = "target"
    class_names: list[str] = field(default_factory=list)
    image_shape: tuple[int, ...] | None = None  # (channels, height, width) when rows are flattened images
    task_reason: str = ""  # why the task is what it is (inferred from the labels, or given)
    notes: list[str] = field(default_factory=list)  # what reading changed, e.g. rows dropped for missing values
    # the (decimal mark, thousands separator) a CSV reader found its numbers written with, when one format
    # read alike for the whole file: a run records it, so its config repeats the reading without detection
    number_format: tuple[str, str] | None = None
    # the file line of each given row (rows counted in this table's order), for messages that name rows as
    # every other message does (file:line); None for data that is not a text file
    line_of: Callable[[list[int]], list[int | None]] | None = None

    def __post_init__(self) -> None:
        from .memmap import is_lazy

        if not is_lazy(self.X):  # a RowSource (a memory-mapped file) stays on disk
            self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        if self.X.ndim != 2:
            raise DataError(
                f"{self.name}: features must be a 2-D array (samples, features), got shape {tuple(self.X.shape)}"
            )
        if self.task == "classification":
            self.y = np.ascontiguousarray(self.y, dtype=np.int64).reshape(-1)
        elif self.task == "regression":
            y = np.asarray(self.y, dtype=np.float32)
            self.y = np.ascontiguousarray(y.reshape(len(y), -1))
        else:
            raise ConfigError(f"{self.name}: task must be 'classification' or 'regression', got {self.task!r}")
        if len(self.X) != len(self.y):
            raise DataError(f"{self.name}: {len(self.X)} feature rows but {len(self.y)} targets")
        if not self.feature_names:
            self.feature_names = [f"x{i}" for i in range(self.X.shape[1])]
        if self.task == "classification" and not self.class_names:
            self.class_names = [str(c) for c in range(self.n_classes)]

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1 if self.task == "classification" and len(self.y) else 0

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def __len__(self) -> int:
        return len(self.X)


# ---------------------------------------------------------------------- synthetic (seeded)
def line(n_samples: int = 200, slope: float = 3.0, intercept: float = 2.0, noise: float = 0.5, seed: int = 0) -> Table:
    """y = slope * x + intercept + Gaussian noise, x uniform on [-3, 3]: regression by a straight line."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (n_samples, 1))
    y = slope * x + intercept + noise * rng.standard_normal((n_samples, 1))
    return Table(x, y, "regression", "line", ["x"], "y")


def polynomial(
    n_samples: int = 200, coefficients: tuple[float, ...] = (1.0, -2.0, 0.5), noise: float = 0.3, seed: int = 0
) -> Table:
    """y = c0 + c1 x + c2 x^2 + ... + noise, x uniform on [-3, 3]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (n_samples, 1))
    y = sum(c * x**k for k, c in enumerate(coefficients)) + noise * rng.standard_normal((n_samples, 1))
    return Table(x, y, "regression", "polynomial", ["x"], "y")


def moons(n_samples: int = 400, noise: float = 0.15, seed: int = 0) -> Table:
    """Two interleaving half circles (scikit-learn's make_moons geometry)."""
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.vstack([np.c_[np.cos(t_out), np.sin(t_out)], np.c_[1 - np.cos(t_in), 0.5 - np.sin(t_in)]])
    y = np.r_[np.zeros(n_out), np.ones(n_in)]
    X += noise * rng.standard_normal(X.shape)
    order = rng.permutation(n_samples)
    return Table(X[order], y[order], "classification", "moons")


def circles(n_samples: int = 400, noise: float = 0.08, factor: float = 0.5, seed: int = 0) -> Table:
    """A small circle inside a large one (two classes)."""
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.vstack([np.c_[np.cos(t_out), np.sin(t_out)], factor * np.c_[np.cos(t_in), np.sin(t_in)]])
    y = np.r_[np.zeros(n_out), np.ones(n_in)]
    X += noise * rng.standard_normal(X.shape)
    order = rng.permutation(n_samples)
    return Table(X[order], y[order], "classification", "circles")


def spirals(n_samples: int = 600, n_classes: int = 3, noise: float = 0.2, seed: int = 0) -> Table:
    """Interleaved spiral arms, one per class (the classic CS231n toy problem)."""
    rng = np.random.default_rng(seed)
    per = n_samples // n_classes
    X, y = [], []
    for c in range(n_classes):
        r = np.linspace(0.0, 1.0, per)
        t = np.linspace(c * 4, (c + 1) * 4, per) + noise * rng.standard_normal(per)
        X.append(np.c_[r * np.sin(t), r * np.cos(t)])
        y.append(np.full(per, c))
    Xa, ya = np.vstack(X), np.concatenate(y)
    order = rng.permutation(len(ya))
    return Table(Xa[order], ya[order], "classification", "spirals")


def blobs(n_samples: int = 400, n_classes: int = 3, n_features: int = 2, spread: float = 1.0, seed: int = 0) -> Table:
    """Gaussian clusters around random centres in [-5, 5]^d, one per class."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-5, 5, (n_classes, n_features))
    y = rng.integers(0, n_classes, n_samples)
    X = centres[y] + spread * rng.standard_normal((n_samples, n_features))
    return Table(X, y, "classification", "blobs")


def xor(n_samples: int = 400, noise: float = 0.1, seed: int = 0) -> Table:
    """Points in the four quadrants; class 1 where x and y have opposite signs (the XOR of their signs),
    class 0 where they share one (not linearly separable). The labels come from the points before
    ``noise`` is added, so with noise a few points near an axis sit across from their class.

    Example:
        >>> t = xor(200, noise=0.0)
        >>> bool(((t.X[:, 0] * t.X[:, 1] < 0) == (t.y == 1)).all())
        True
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n_samples, 2))
    y = (X[:, 0] * X[:, 1] < 0).astype(np.int64)
    X = X + noise * rng.standard_normal(X.shape)
    return Table(X, y, "classification", "xor")


# ---------------------------------------------------------------------- scikit-learn's shipped data
# The five data sets are small CSV files inside scikit-learn's package. They are read directly, as
# its loaders read them: importing sklearn.datasets takes about a second, most of a short CLI run.
# The values equal the loaders' (a test compares them); without the files, the loaders are used.
_CELL = (
    "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity", "concave points", "symmetry",
    "fractal dimension",
)  # fmt: skip
_FEATURES = {
    "iris": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
    "wine": [
        "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
        "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315_of_diluted_wines", "proline",
    ],
    "breast_cancer": [f"mean {w}" for w in _CELL] + [f"{w} error" for w in _CELL] + [f"worst {w}" for w in _CELL],
    "diabetes": ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"],
    "digits": [f"pixel_{row}_{col}" for row in range(8) for col in range(8)],
}  # fmt: skip
_FILES = {"iris": "iris.csv", "wine": "wine_data.csv", "breast_cancer": "breast_cancer.csv", "digits": "digits.csv.gz"}


def _sklearn_data_dir() -> Any:
    import importlib.util
    import pathlib

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return None
    folder = pathlib.Path(spec.origin).parent / "datasets" / "data"
    return folder if folder.is_dir() else None


def _shipped(name: str) -> Table | None:
    """One of scikit-learn's five shipped data sets read from its files, or None without them."""
    folder = _sklearn_data_dir()
    if folder is None:
        return None
    try:
        if name == "diabetes":
            data = np.loadtxt(folder / "diabetes_data_raw.csv.gz")
            target = np.loadtxt(folder / "diabetes_target.csv.gz")
            data = (data - data.mean(axis=0)) / data.std(axis=0)  # load_diabetes(scaled=True)
            data /= data.shape[0] ** 0.5
            return Table(data, target, "regression", name, list(_FEATURES[name]), "target", [], None)
        path = folder / _FILES[name]
        table = np.loadtxt(path, delimiter=",", skiprows=0 if name == "digits" else 1)
        if name == "digits":
            classes = [str(c) for c in range(10)]
        else:
            with open(path) as handle:
                classes = handle.readline().strip().split(",")[2:]
    except (OSError, ValueError):
        return None
    image_shape = (1, 8, 8) if name == "digits" else None
    return Table(
        table[:, :-1], table[:, -1].astype(np.int64), "classification", name, list(_FEATURES[name]), "target", classes,
        image_shape,
    )  # fmt: skip


def _sklearn(name: str) -> Table:
    shipped = _shipped(name)
    if shipped is not None:
        return shipped
    try:
        from sklearn import datasets as skd
    except ImportError:
        raise ImportError(f"the {name!r} dataset comes with scikit-learn: pip install 'downslope[datasets]'") from None
    bunch = getattr(skd, f"load_{name}")()
    task = "regression" if name == "diabetes" else "classification"
    classes = [str(c) for c in getattr(bunch, "target_names", [])] if task == "classification" else []
    image_shape = (1, 8, 8) if name == "digits" else None
    return Table(
        bunch.data,
        bunch.target,
        task,
        name,
        [str(f) for f in getattr(bunch, "feature_names", [])],
        "target",
        classes,
        image_shape,
    )


SYNTHETIC: dict[str, Callable[..., Table]] = {
    "line": line,
    "polynomial": polynomial,
    "moons": moons,
    "circles": circles,
    "spirals": spirals,
    "blobs": blobs,
    "xor": xor,
}
SKLEARN = ("digits", "iris", "wine", "breast_cancer", "diabetes")
NAMES = tuple(SYNTHETIC) + SKLEARN


def load(name: str, seed: int = 0, **options: Any) -> Table:
    """Load a dataset by name: one of the synthetic ones (seeded) or scikit-learn's shipped ones."""
    if name in SYNTHETIC:
        try:
            return SYNTHETIC[name](seed=seed, **options)
        except TypeError as exc:
            raise ConfigError(f"dataset {name!r}: {exc}") from None
    if name in SKLEARN:
        if options:
            raise ConfigError(f"dataset {name!r} takes no options, got {sorted(options)}")
        return _sklearn(name)
    raise ConfigError(
        f"unknown dataset {name!r}; choose one of: {', '.join(NAMES)} (or give a .csv, .csv.gz, .tsv, .parquet, .npz or .npy file)"
    )


def chunked_moments(chunks: Any) -> tuple[int, np.ndarray, np.ndarray]:
    """Count, mean and sum of squared deviations per column, in one pass over chunks of rows.

    Each chunk's own mean and squared deviations are computed in float64 (two passes over the
    chunk, which sits in memory) and merged with Chan, Golub and LeVeque's pairwise update, so
    the result does not suffer the cancellation of sum-of-squares formulas; one chunk gives exactly
    ``X.mean(0)`` and ``X.var(0) * n``.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(1e4, 1.0, (1000, 2))
        >>> n, mean, m2 = chunked_moments([x[:300], x[300:]])
        >>> bool(np.allclose(mean, x.mean(0), rtol=1e-14)), bool(np.allclose(m2 / n, x.var(0), rtol=1e-10))
        (True, True)
    """
    count, mean, m2 = 0, None, None
    for chunk in chunks:
        block = np.asarray(chunk, dtype=np.float64)
        k = len(block)
        if k == 0:
            continue
        mean_b = block.mean(axis=0)
        m2_b = ((block - mean_b) ** 2).sum(axis=0)
        if mean is None or m2 is None:
            count, mean, m2 = k, mean_b, m2_b
            continue
        total = count + k
        delta = mean_b - mean
        mean = mean + delta * (k / total)
        m2 = m2 + m2_b + delta**2 * (count * k / total)
        count = total
    if mean is None or m2 is None:
        raise DataError("Standardizer: cannot fit on 0 rows")
    return count, mean, m2


class Standardizer:
    """Zero mean, unit variance per feature, fitted on the training split only.

    Constant features keep scale 1 so they do not turn into NaN. The statistics are computed in one
    streaming pass over chunks of rows (float64, :func:`chunked_moments`), so a memory-mapped
    source larger than memory is never read whole; its transform is applied batch by batch.

    ``fit(X, passthrough=...)`` leaves the features at those indices as they are (mean 0, scale 1):
    one-hot columns, which standardizing would turn a category seen once in ``n`` rows into a feature
    of size about ``sqrt(n)`` (scikit-learn's ``ColumnTransformer`` scales only the numeric columns).

    Example:
        >>> X = np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 1.0]])
        >>> s = Standardizer().fit(X, passthrough=[1])
        >>> s.mean.tolist(), s.scale.tolist()[1], s.transform(X)[:, 1].tolist()
        ([3.0, 0.0], 1.0, [0.0, 0.0, 1.0])
    """

    def __init__(self) -> None:
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, X: Any, passthrough: Any = None) -> Standardizer:
        from .memmap import row_chunks

        if not hasattr(X, "shape"):
            X = np.asarray(X, dtype=np.float64)
        count, mean, m2 = chunked_moments(row_chunks(X))
        std = np.sqrt(m2 / count)
        self.mean = mean.astype(np.float32)
        self.scale = np.where(std > 1e-12, std, 1.0).astype(np.float32)
        if passthrough is not None and len(passthrough):
            keep = np.asarray(passthrough, dtype=np.int64)
            self.mean[keep], self.scale[keep] = 0.0, 1.0
        return self

    def transform(self, X: Any) -> Any:
        from .memmap import is_lazy

        if self.mean is None or self.scale is None:
            raise StateError("Standardizer.transform before fit")
        if is_lazy(X):
            if X.shape[1] != self.mean.shape[0]:
                raise DataError(f"Standardizer: fitted on {self.mean.shape[0]} features, got data with {X.shape[1]}")
            return X.standardized(self.mean, self.scale)
        X = np.asarray(X, dtype=np.float32)
        if X.shape[-1] != self.mean.shape[0]:
            raise DataError(f"Standardizer: fitted on {self.mean.shape[0]} features, got data with {X.shape[-1]}")
        return (X - self.mean) / self.scale

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "scale": self.scale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean = np.asarray(state["mean"], np.float32)
        self.scale = np.asarray(state["scale"], np.float32)
