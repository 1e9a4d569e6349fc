"""torch._inductor.config in downslope: the settings scripts write are accepted and read by nothing."""

from __future__ import annotations

import pytest

import downslope as ds

torch = pytest.importorskip("torch")


def test_inductor_config_starts_at_torchs_defaults_and_keeps_assignments():
    import torch._inductor.config as theirs

    import downslope._inductor.config as ours

    assert ds._inductor.config is ours
    names = ["coordinate_descent_tuning", "epilogue_fusion", "fx_graph_cache", "freezing", "max_autotune",
             "max_autotune_gemm", "conv_1x1_as_mm", "force_fuse_int_mm_with_mul", "use_mixed_mm", "debug"]  # fmt: skip
    assert {n: getattr(ours, n) for n in names} == {n: getattr(theirs, n) for n in names}
    assert ours.triton.cudagraphs == theirs.triton.cudagraphs
    before = ours.coordinate_descent_tuning
    try:
        ds._inductor.config.coordinate_descent_tuning = not before
        ds._inductor.config.triton.unique_kernel_names = True
        assert ours.coordinate_descent_tuning is (not before)
    finally:
        ours.coordinate_descent_tuning = before
