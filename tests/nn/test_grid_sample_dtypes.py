"""grid_sample refuses an input and a grid of different dtypes, as torch 2.13 does ("expected scalar
type Float but found Double", a RuntimeError), in every mode and rank and through torch.grid_sampler."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize(
    "dtypes", [("float32", "float64"), ("float64", "float32"), ("float32", "float16"), ("float32", "int64")]
)
def test_mixed_dtypes_refused_as_torch(mode: str, dtypes: tuple[str, str]) -> None:
    def call(lib):
        image = lib.ones(1, 1, 3, 3, dtype=getattr(lib, dtypes[0]))
        grid = lib.zeros(1, 2, 2, 2, dtype=getattr(lib, dtypes[1]))
        return lib.nn.functional.grid_sample(image, grid, mode=mode, align_corners=False)

    with pytest.raises(RuntimeError) as theirs:
        call(torch)
    with pytest.raises(RuntimeError) as ours:
        call(ds)
    assert str(theirs.value) in str(ours.value)


def test_volumetric_and_grid_sampler_refuse_too() -> None:
    with pytest.raises(RuntimeError, match="expected scalar type Float but found Double"):
        ds.nn.functional.grid_sample(
            ds.ones(1, 1, 2, 2, 2), ds.zeros(1, 1, 1, 1, 3, dtype=ds.float64), align_corners=False
        )
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        ds.grid_sampler(ds.ones(1, 1, 3, 3, dtype=ds.float64), ds.zeros(1, 2, 2, 2), 0, 0, False)


def test_same_dtype_still_matches_torch() -> None:
    image, grid = torch.randn(1, 2, 4, 5, dtype=torch.float64), torch.rand(1, 3, 3, 2, dtype=torch.float64) * 2 - 1
    theirs = torch.nn.functional.grid_sample(image, grid, align_corners=False)
    ours = ds.nn.functional.grid_sample(ds.from_numpy(image.numpy()), ds.from_numpy(grid.numpy()), align_corners=False)
    assert ours.numpy() == pytest.approx(theirs.numpy(), rel=1e-12, abs=1e-12)
