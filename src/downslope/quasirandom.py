"""torch.quasirandom: ``SobolEngine``, Sobol' low-discrepancy points in the unit cube (collocation points
for physics-informed networks, initial designs for Bayesian optimisation).

Unscrambled points equal PyTorch's bit for bit: the same direction numbers, the same Gray-code order,
the same rounding to float32. Scrambled points use PyTorch's algorithm (a random lower-triangular
binary matrix per dimension applied to the direction numbers, Owen's linear matrix scrambling, then a
random digital shift) with downslope's random numbers, so for a seed they differ from PyTorch's; the
same seed gives the same points here on every run. Two smaller differences: a scrambled engine's first
point is computed in the dtype asked for (PyTorch's passes through float32 first), and ``draw(0)`` on a
fresh engine gives a (0, dimension) tensor (PyTorch's raises).

Example:
    >>> import downslope as ds
    >>> ds.quasirandom.SobolEngine(dimension=3).draw(3)
    tensor([[0.  , 0.  , 0.  ],
            [0.5 , 0.5 , 0.5 ],
            [0.75, 0.25, 0.25]])
"""

from __future__ import annotations

import importlib.resources
import io
from typing import Any

import numpy as np

from . import backend
from .devices import like
from .errors import ArgumentError, ArgumentTypeError, DTypeError, InvalidValueError
from .graph import no_grad
from .tensor import Tensor, wrap_array

__all__ = ["SobolEngine"]

# The direction numbers of Joe & Kuo's "new-joe-kuo-6.21201" table (S. Joe and F. Y. Kuo, "Constructing
# Sobol sequences with better two-dimensional projections", SIAM J. Sci. Comput. 30, 2008;
# https://web.maths.unsw.edu.au/~fkuo/sobol/), the table PyTorch's SobolEngine uses. Taken once from
# SciPy's copy (scipy/stats/_sobol_direction_numbers.npz, BSD-3-Clause) and stored compactly: `poly`,
# each dimension's primitive polynomial as an integer (its degree m = bit_length - 1), and `vinit`, the
# m initial direction numbers of every dimension one after another (SciPy pads each to 18). Written by:
#     degree = [int(p).bit_length() - 1 for p in poly]
#     flat = np.concatenate([vinit[d, :degree[d]] for d in range(len(poly))])
#     np.savez_compressed(path, poly=poly.astype(np.uint32), vinit=flat.astype(np.uint32))
_TABLE_FILE = "_sobol_directions.npz"  # a resource of this package (read through importlib.resources)
_table: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # poly, degree, offsets into vinit, vinit


def _direction_table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(poly, degree, offset, vinit) as int64 arrays, read from the package's file on first use."""
    global _table
    if _table is None:
        # through importlib.resources, not a path beside __file__: the package may be imported from a
        # zip (a zipapp, a PEX), where no such file exists on disk
        packed = importlib.resources.files(__package__ or "downslope").joinpath(_TABLE_FILE).read_bytes()
        with np.load(io.BytesIO(packed), allow_pickle=False) as data:
            poly = data["poly"].astype(np.int64)
            vinit = data["vinit"].astype(np.int64)
        degree = (np.frexp(poly.astype(np.float64))[1] - 1).astype(np.int64)  # bit_length - 1, exact below 2**53
        offset = np.concatenate(([0], np.cumsum(degree)[:-1])).astype(np.int64)
        _table = (poly, degree, offset, vinit)
    poly, degree, offset, vinit = _table
    return poly, degree, offset, vinit


def _direction_numbers(dimension: int, maxbit: int) -> np.ndarray:
    """The (dimension, maxbit) int64 direction numbers, column j scaled by 2**(maxbit-1-j): PyTorch's
    ``_sobol_engine_initialize_state_`` (Bratley & Fox's recurrence), every dimension at once."""
    poly, degree, offset, vinit = _direction_table()
    p, m = poly[:dimension], degree[:dimension]
    v = np.zeros((dimension, maxbit), dtype=np.int64)
    v[0, :] = 1  # the first dimension is van der Corput's sequence
    rows = np.arange(1, dimension)
    for j in range(maxbit):
        initial = rows[m[rows] > j]
        v[initial, j] = vinit[offset[initial] + j]
        r = rows[m[rows] <= j]
        if r.size == 0:
            continue
        pr, mr = p[r], m[r]
        newv = v[r, j - mr]
        for k in range(int(mr.max())):
            active = k < mr
            bit = (pr >> np.where(active, mr - 1 - k, 0)) & 1
            take = active & (bit == 1)
            newv ^= np.where(take, v[r, np.maximum(j - k - 1, 0)] << (k + 1), 0)
        v[r, j] = newv
    return v << np.arange(maxbit - 1, -1, -1, dtype=np.int64)


def _scramble_directions(state: np.ndarray, ltm: np.ndarray) -> np.ndarray:
    """PyTorch's ``_sobol_engine_scramble_``: each direction number's maxbit binary digits (most
    significant first) multiplied by its dimension's lower-triangular matrix (diagonal set to 1), mod 2."""
    dimension, maxbit = state.shape
    weights = np.arange(maxbit - 1, -1, -1, dtype=np.int64)
    out = np.empty_like(state)
    step = 1024  # dimensions per block: keeps the float32 digit arrays small for large dimensions
    for start in range(0, dimension, step):
        stop = min(start + step, dimension)
        lower = ltm[start:stop].astype(np.float32)
        idx = np.arange(maxbit)
        lower[:, idx, idx] = 1
        digits = ((state[start:stop, :, None] >> weights) & 1).astype(np.float32)  # (d, j, c)
        # sums of at most maxbit ones: exact in float32, so the BLAS product gives the integer counts
        counts = np.matmul(digits, lower.transpose(0, 2, 1))  # (d, j, p)
        bits = counts.astype(np.int64) & 1
        out[start:stop] = (bits << weights).sum(axis=-1)
    return out


def _check_count(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{where}: expected an integer {name}, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ArgumentError(f"{where}: expected a non-negative {name}, got {int(value)}")
    return int(value)


class SobolEngine:
    """Draws (scrambled) Sobol' sequences of points in ``[0, 1)^dimension`` (``torch.quasirandom.SobolEngine``).

    Args:
        dimension: the number of coordinates of each point, 1 to ``MAXDIM`` (21201).
        scramble: ``True`` scrambles the points (Owen's linear matrix scrambling and a digital shift):
            random, still one point per interval of length 2**-m for the first 2**m points.
        seed: the scrambling's seed; ``None`` draws it from downslope's generator (``ds.manual_seed``).
            The points for a seed differ from PyTorch's (another random number generator).

    Example:
        >>> engine = SobolEngine(2)
        >>> engine.draw_base2(2).tolist()
        [[0.0, 0.0], [0.5, 0.5], [0.75, 0.25], [0.25, 0.75]]
        >>> engine.num_generated
        4
    """

    MAXBIT = 30
    MAXDIM = 21201

    def __init__(self, dimension: int, scramble: bool = False, seed: int | None = None) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)):
            raise ArgumentTypeError(
                f"SobolEngine: expected an integer dimension, got {type(dimension).__name__} {dimension!r}"
            )
        if not 1 <= dimension <= self.MAXDIM:
            raise ArgumentError(
                f"SobolEngine: supported range of dimensionality for SobolEngine is [1, {self.MAXDIM}], "
                f"got dimension={int(dimension)}"
            )
        self.seed = seed
        self.scramble = scramble
        self.dimension = int(dimension)
        self._state = _direction_numbers(self.dimension, self.MAXBIT)
        if self.scramble:
            self._scramble()
        else:
            self._shift = np.zeros(self.dimension, dtype=np.int64)
        self._quasi = self._shift.copy()
        self.num_generated = 0

    def _scramble(self) -> None:
        if self.seed is None:
            rng = backend.rng()  # the library's generator, as PyTorch's global one: ds.manual_seed repeats it
        else:
            from .generator import Generator

            rng = Generator().manual_seed(self.seed).numpy_generator
        # PyTorch's draws, in its order: the shift's binary digits, then the matrices
        shift_bits = rng.integers(0, 2, size=(self.dimension, self.MAXBIT), dtype=np.int64)
        self._shift = (shift_bits << np.arange(self.MAXBIT, dtype=np.int64)).sum(axis=1)
        ltm = np.tril(rng.integers(0, 2, size=(self.dimension, self.MAXBIT, self.MAXBIT), dtype=np.uint8))
        self._state = _scramble_directions(self._state, ltm)

    # PyTorch's state tensors, read-only copies (int64)
    @property
    def sobolstate(self) -> Tensor:
        """The (dimension, MAXBIT) direction numbers (scrambled when ``scramble``)."""
        return wrap_array(self._state.copy())

    @property
    def shift(self) -> Tensor:
        """The digital shift of every dimension (zeros unless ``scramble``)."""
        return wrap_array(self._shift.copy())

    @property
    def quasi(self) -> Tensor:
        """The last point drawn, as integers (the shift before any)."""
        return wrap_array(self._quasi.copy())

    def _next_values(self, n: int, where: str) -> np.ndarray:
        """The next ``n`` points as (n, dimension) integers of MAXBIT bits; advances the engine."""
        if self.num_generated + n > 2**self.MAXBIT:
            raise InvalidValueError(
                f"{where}: a Sobol' sequence has 2**{self.MAXBIT} points; {self.num_generated} were drawn "
                f"already, so {n} more do not exist"
            )
        if n == 0:
            return np.zeros((0, self.dimension), dtype=np.int64)
        start = self.num_generated
        if start == 0:  # the first point is the shift itself; the walk starts at the second
            first, n_walk, index = self._shift[None, :], n - 1, 0
        else:
            first, n_walk, index = None, n, start - 1
        # point i+1 is point i XOR the direction number of the lowest zero bit of i (Gray-code order)
        i = np.arange(index, index + n_walk, dtype=np.int64)
        low_zero = np.frexp(((i ^ (i + 1)) + 1).astype(np.float64))[1] - 2
        steps = self._state[:, low_zero].T
        walk = np.bitwise_xor.accumulate(steps, axis=0) ^ self._quasi
        if n_walk:
            self._quasi = walk[-1].copy()
        values = walk if first is None else np.concatenate((first, walk), axis=0)
        self.num_generated += n
        return values

    def draw(self, n: int = 1, out: Tensor | None = None, dtype: Any = None) -> Tensor:
        """The next ``n`` points, a (n, dimension) tensor of ``dtype`` (float32 or float64; the default
        dtype when ``None``), written into ``out`` (resized, cast to its dtype) when given."""
        n = _check_count(n, "n", "SobolEngine.draw")
        resolved = backend.get_default_dtype() if dtype is None else backend.as_dtype(dtype)
        if resolved not in (backend.float32, backend.float64):
            raise DTypeError(f"SobolEngine.draw: expected dtype float32 or float64, got {resolved}")
        values = self._next_values(n, "SobolEngine.draw")
        # PyTorch's rounding: the integer cast to the dtype, then scaled by 2**-MAXBIT (exact)
        result = values.astype(resolved) * resolved.type(2.0**-self.MAXBIT)
        if out is None:
            return wrap_array(result)
        if not isinstance(out, Tensor):
            raise ArgumentTypeError(f"SobolEngine.draw: argument 'out' must be Tensor, not {type(out).__name__}")
        if tuple(out.shape) == result.shape:
            with no_grad():
                out.copy_(wrap_array(like(result, out.array)))  # in place, on out's device: views of out see it
        else:
            # PyTorch resizes out (resize_as_) without a warning: a new buffer of out's dtype, on its device
            out.array = like(result.astype(out.array.dtype), out.array)
        return out

    def draw_base2(self, m: int, out: Tensor | None = None, dtype: Any = None) -> Tensor:
        """The next ``2**m`` points; refused unless the points drawn so far plus these are a power of two
        (what keeps the sequence balanced)."""
        m = _check_count(m, "m", "SobolEngine.draw_base2")
        n = 2**m
        total_n = self.num_generated + n
        if total_n & (total_n - 1) != 0:
            raise ArgumentError(
                "SobolEngine.draw_base2: the balance properties of Sobol' points require n to be a power of 2. "
                f"{self.num_generated} points have been previously generated, then: "
                f"n={self.num_generated}+2**{m}={total_n}. If you still want to do this, please use "
                "'SobolEngine.draw()' instead."
            )
        return self.draw(n=n, out=out, dtype=dtype)

    def reset(self) -> SobolEngine:
        """Back to the first point; returns the engine."""
        self._quasi = self._shift.copy()
        self.num_generated = 0
        return self

    def fast_forward(self, n: int) -> SobolEngine:
        """Skips ``n`` points, as drawing them would; returns the engine."""
        n = _check_count(n, "n", "SobolEngine.fast_forward")
        if self.num_generated + n > 2**self.MAXBIT:
            raise InvalidValueError(
                f"SobolEngine.fast_forward: a Sobol' sequence has 2**{self.MAXBIT} points; {self.num_generated} "
                f"were drawn already, so {n} more cannot be skipped"
            )
        self.num_generated += n
        if self.num_generated:
            # the last point skipped, straight from its Gray code: the XOR of the direction numbers of its bits
            index = self.num_generated - 1
            gray = index ^ (index >> 1)
            bits = (gray >> np.arange(self.MAXBIT)) & 1
            self._quasi = np.bitwise_xor.reduce(self._state * bits, axis=1) ^ self._shift
        return self

    def __repr__(self) -> str:
        fmt_string = [f"dimension={self.dimension}"]
        if self.scramble:
            fmt_string += ["scramble=True"]
        if self.seed is not None:
            fmt_string += [f"seed={self.seed}"]
        return self.__class__.__name__ + "(" + ", ".join(fmt_string) + ")"
