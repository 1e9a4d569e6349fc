"""downslope.quasirandom.SobolEngine against torch.quasirandom.SobolEngine: unscrambled points bit for bit,
scrambled points by the properties that hold whatever the random numbers (and by torch's own kernels fed
downslope's random numbers)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope import quasirandom
from downslope.errors import ArgumentError, ArgumentTypeError, DTypeError
from downslope.generator import Generator
from downslope.quasirandom import SobolEngine

torch = pytest.importorskip("torch")

DTYPES = [(ds.float32, torch.float32), (ds.float64, torch.float64)]


def _same(a: ds.Tensor, b: torch.Tensor) -> None:
    assert a.dtype == np.dtype(str(b.dtype).removeprefix("torch."))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_direction_numbers_equal_torchs_for_every_dimension() -> None:
    ours = SobolEngine(SobolEngine.MAXDIM).sobolstate.numpy()
    theirs = torch.quasirandom.SobolEngine(torch.quasirandom.SobolEngine.MAXDIM).sobolstate.numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dimension", [*range(1, 41), 64, 100, 257, 1000, 1111])
@pytest.mark.parametrize(("dtype", "torch_dtype"), DTYPES)
def test_unscrambled_points_equal_torchs(dimension: int, dtype: np.dtype, torch_dtype: torch.dtype) -> None:
    n = 4099 if dimension <= 40 else 1500  # past 2**12: every direction number up to bit 12 is used
    _same(
        SobolEngine(dimension).draw(n, dtype=dtype), torch.quasirandom.SobolEngine(dimension).draw(n, dtype=torch_dtype)
    )


@pytest.mark.parametrize("dimension", [5000, 12345, 21201])
def test_unscrambled_points_equal_torchs_in_the_largest_dimensions(dimension: int) -> None:
    for dtype, torch_dtype in DTYPES:
        ours, theirs = SobolEngine(dimension), torch.quasirandom.SobolEngine(dimension)
        _same(ours.draw(70, dtype=dtype), theirs.draw(70, dtype=torch_dtype))
        _same(ours.fast_forward(1000).draw(30, dtype=dtype), theirs.fast_forward(1000).draw(30, dtype=torch_dtype))


def test_default_dtype_is_followed_as_torchs() -> None:
    assert SobolEngine(3).draw(5).dtype == ds.float32
    ds.set_default_dtype(ds.float64)
    try:
        _same(SobolEngine(3).draw(5), torch.quasirandom.SobolEngine(3).draw(5, dtype=torch.float64))
    finally:
        ds.set_default_dtype(ds.float32)


@pytest.mark.parametrize("seed", range(6))
def test_interleaved_draws_fast_forwards_and_resets_equal_torchs(seed: int) -> None:
    rnd = random.Random(seed)
    dimension = rnd.choice([1, 2, 7, 33, 300])
    ours, theirs = SobolEngine(dimension), torch.quasirandom.SobolEngine(dimension)
    for _ in range(40):
        action = rnd.choice(["draw", "draw", "draw1", "ff", "reset", "base2", "draw0"])
        dtype, torch_dtype = rnd.choice(DTYPES)
        if action == "draw":
            n = rnd.choice([2, 3, 17, 64, 255, 1000])
            _same(ours.draw(n, dtype=dtype), theirs.draw(n, dtype=torch_dtype))
        elif action == "draw1":
            _same(ours.draw(dtype=dtype), theirs.draw(dtype=torch_dtype))
        elif action == "draw0" and theirs.num_generated:  # torch refuses draw(0) on a fresh engine
            _same(ours.draw(0, dtype=dtype), theirs.draw(0, dtype=torch_dtype))
        elif action == "ff":
            n = rnd.choice([0, 1, 2, 5, 100, 3000])
            assert ours.fast_forward(n) is ours
            theirs.fast_forward(n)
        elif action == "reset":
            assert ours.reset() is ours
            theirs.reset()
        elif action == "base2":
            total = theirs.num_generated
            ms = [m for m in range(12) if (total + 2**m) & (total + 2**m - 1) == 0]
            if ms:
                m = rnd.choice(ms)
                _same(ours.draw_base2(m, dtype=dtype), theirs.draw_base2(m, dtype=torch_dtype))
        assert ours.num_generated == theirs.num_generated
        np.testing.assert_array_equal(ours.quasi.numpy(), theirs.quasi.numpy())
    _same(ours.draw(500), theirs.draw(500))


def test_draw_into_out_as_torch() -> None:
    for shape in [(4, 3), (1,), (2, 2)]:  # the result's shape, then shapes that are resized
        out, torch_out = ds.zeros(*shape, dtype=ds.float64), torch.zeros(*shape, dtype=torch.float64)
        result = SobolEngine(3).draw(4, out=out)
        assert result is out
        _same(out, torch.quasirandom.SobolEngine(3).draw(4, out=torch_out))
    with pytest.raises(ArgumentTypeError, match="'out' must be Tensor"):
        SobolEngine(3).draw(4, out=np.zeros((4, 3)))  # type: ignore[arg-type]


def test_draw_base2_refuses_an_unbalanced_count_as_torch() -> None:
    ours, theirs = SobolEngine(2), torch.quasirandom.SobolEngine(2)
    ours.draw(3)
    theirs.draw(3)
    with pytest.raises(ValueError, match=r"power of 2") as torch_error:
        theirs.draw_base2(2)
    with pytest.raises(ArgumentError, match=r"power of 2") as error:
        ours.draw_base2(2)
    assert "n=3+2**2=7" in str(error.value) and "n=3+2**2=7" in str(torch_error.value)
    _same(ours.draw_base2(0), theirs.draw_base2(0))  # 3 + 1 = 4
    _same(ours.draw_base2(2), theirs.draw_base2(2))  # 4 + 4 = 8
    with pytest.raises(ArgumentError, match="non-negative m, got -1"):
        ours.draw_base2(-1)


def test_bad_arguments_say_what_was_expected() -> None:
    for dimension in (0, SobolEngine.MAXDIM + 1):
        with pytest.raises(ValueError, match=r"\[1, 21201\]"):
            torch.quasirandom.SobolEngine(dimension)
        with pytest.raises(ArgumentError, match=rf"\[1, 21201\], got dimension={dimension}"):
            SobolEngine(dimension)
    with pytest.raises(ArgumentTypeError, match="integer dimension, got float 2.5"):
        SobolEngine(2.5)  # type: ignore[arg-type]
    with pytest.raises(DTypeError, match="float32 or float64, got int64"):
        SobolEngine(2).draw(3, dtype=ds.int64)
    with pytest.raises(ArgumentError, match="non-negative n, got -1"):
        SobolEngine(2).draw(-1)
    with pytest.raises(ArgumentTypeError, match="integer n, got float 2.0"):
        SobolEngine(2).draw(2.0)  # type: ignore[arg-type]
    with pytest.raises(ArgumentError, match="non-negative n"):
        SobolEngine(2).fast_forward(-3)
    engine = SobolEngine(2).fast_forward(2**30 - 2)
    assert engine.draw(2).shape == (2, 2)  # the last points of the sequence
    with pytest.raises(ds.errors.InvalidValueError, match=r"2\*\*30 points"):
        engine.draw(1)


def test_attributes_and_repr_as_torchs() -> None:
    for args in [(3,), (3, True), (3, True, 7), (3, False, 7)]:
        ours, theirs = SobolEngine(*args), torch.quasirandom.SobolEngine(*args)
        assert repr(ours) == repr(theirs)
        assert (ours.dimension, ours.scramble, ours.seed, ours.num_generated) == (
            theirs.dimension,
            theirs.scramble,
            theirs.seed,
            theirs.num_generated,
        )
    assert (SobolEngine.MAXBIT, SobolEngine.MAXDIM) == (
        torch.quasirandom.SobolEngine.MAXBIT,
        torch.quasirandom.SobolEngine.MAXDIM,
    )
    assert ds.quasirandom.SobolEngine is SobolEngine


def test_scrambling_equals_torchs_kernel_for_the_same_matrices() -> None:
    rng = np.random.default_rng(3)
    for dimension in (1, 5, 1500):  # 1500: more than one block of dimensions
        ltm = np.tril(rng.integers(0, 2, size=(dimension, 30, 30)))
        state = quasirandom._direction_numbers(dimension, 30)
        expected = torch.tensor(state.copy())
        torch._sobol_engine_scramble_(expected, torch.tensor(ltm), dimension)
        np.testing.assert_array_equal(quasirandom._scramble_directions(state, ltm.astype(np.uint8)), expected.numpy())


@pytest.mark.parametrize("seed", [0, 11])
def test_scrambled_points_are_torchs_algorithm_on_downslopes_random_numbers(seed: int) -> None:
    dimension = 6
    # the random numbers the engine draws, in its order: the shift's digits, then the matrices
    rng = Generator().manual_seed(seed).numpy_generator
    shift_bits = rng.integers(0, 2, size=(dimension, 30), dtype=np.int64)
    ltm = np.tril(rng.integers(0, 2, size=(dimension, 30, 30), dtype=np.uint8))
    theirs = torch.quasirandom.SobolEngine(dimension)
    torch._sobol_engine_scramble_(theirs.sobolstate, torch.tensor(ltm.astype(np.int64)), dimension)
    theirs.shift = torch.mv(torch.tensor(shift_bits), torch.pow(2, torch.arange(30)))
    theirs.quasi = theirs.shift.clone()
    theirs._first_point = (theirs.shift.double() / 2**30).reshape(1, -1)
    ours = SobolEngine(dimension, scramble=True, seed=seed)
    _same(ours.draw(300, dtype=ds.float64), theirs.draw(300, dtype=torch.float64))
    _same(ours.fast_forward(77).draw(5, dtype=ds.float64), theirs.fast_forward(77).draw(5, dtype=torch.float64))


def _stratified(points: np.ndarray, m: int) -> bool:
    """One point in each interval [k/2**m, (k+1)/2**m) of every coordinate."""
    cells = np.floor(points * 2**m).astype(np.int64)
    return all(np.array_equal(np.sort(cells[:, j]), np.arange(2**m)) for j in range(points.shape[1]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scrambled_points_keep_the_balance_of_sobol_points(seed: int) -> None:
    engine = SobolEngine(12, scramble=True, seed=seed)
    first = engine.draw_base2(10, dtype=ds.float64).numpy()
    assert first.min() >= 0 and first.max() < 1
    assert _stratified(first, 10)
    second = engine.draw_base2(10, dtype=ds.float64).numpy()  # points 1024..2047: a net of their own
    assert _stratified(second, 10)
    assert _stratified(np.concatenate([first, second]), 11)
    for m in range(1, 10):  # every leading power of two
        assert _stratified(first[: 2**m], m)
    assert not np.array_equal(first, SobolEngine(12).draw(1024, dtype=ds.float64).numpy())
    points32 = SobolEngine(12, scramble=True, seed=seed).draw(1024).numpy()
    assert points32.dtype == np.float32 and points32.min() >= 0 and points32.max() < 1


def test_the_same_seed_gives_the_same_points() -> None:
    a = SobolEngine(4, scramble=True, seed=5).draw(64).numpy()
    np.testing.assert_array_equal(a, SobolEngine(4, scramble=True, seed=5).draw(64).numpy())
    assert not np.array_equal(a, SobolEngine(4, scramble=True, seed=6).draw(64).numpy())
    engine = SobolEngine(4, scramble=True, seed=5)
    engine.draw(10)
    np.testing.assert_array_equal(engine.reset().draw(64).numpy(), a)
    ds.manual_seed(3)  # without a seed: downslope's generator, as torch's global one
    b = SobolEngine(4, scramble=True).draw(64).numpy()
    ds.manual_seed(3)
    np.testing.assert_array_equal(SobolEngine(4, scramble=True).draw(64).numpy(), b)


def test_the_largest_dimension_scrambles() -> None:
    points = SobolEngine(SobolEngine.MAXDIM, scramble=True, seed=1).draw_base2(3, dtype=ds.float64).numpy()
    assert points.shape == (8, SobolEngine.MAXDIM) and _stratified(points, 3)


@pytest.mark.slow
def test_import_stays_light_and_the_table_loads_on_first_engine() -> None:
    code = (
        "import sys, downslope as ds\n"
        "assert 'downslope.quasirandom' not in sys.modules\n"
        "q = ds.quasirandom\n"
        "assert q._table is None\n"
        "q.SobolEngine(2)\n"
        "assert q._table is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_shipped_table_is_joe_and_kuos_as_scipy_ships_it() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    with np.load(Path(scipy_stats.__file__).parent / "_sobol_direction_numbers.npz") as data:
        poly, vinit = data["poly"], data["vinit"]
    ours_poly, degree, offset, ours_vinit = quasirandom._direction_table()
    np.testing.assert_array_equal(ours_poly, poly)
    for d in range(len(poly)):
        np.testing.assert_array_equal(ours_vinit[offset[d] : offset[d] + degree[d]], vinit[d, : degree[d]])
        assert d == 0 or not vinit[d, degree[d] :].any()  # the first dimension is not read from the table


def test_the_table_file_is_package_data() -> None:
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert quasirandom._TABLE_FILE in config["tool"]["setuptools"]["package-data"]["downslope"]
    table = Path(quasirandom.__file__).parent / quasirandom._TABLE_FILE  # read as a resource of the package
    assert table.stat().st_size < 1_000_000


def test_the_direction_table_is_read_when_the_package_is_imported_from_a_zip(tmp_path):
    # a zipapp or a PEX: there is no file beside the module, only a member of the archive
    import os
    import subprocess
    import sys
    import zipfile

    import downslope

    source = os.path.dirname(os.path.dirname(downslope.__file__))
    archive = tmp_path / "downslope.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as packed:
        for root, dirs, files in os.walk(os.path.join(source, "downslope")):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                path = os.path.join(root, name)
                packed.write(path, os.path.relpath(path, source))
    code = (
        f"import sys; sys.path.insert(0, {str(archive)!r}); import downslope as ds; "
        "assert '.zip' in ds.__file__, ds.__file__; print(ds.quasirandom.SobolEngine(3).draw(2).tolist())"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]"  # torch's first two points
