"""The benchmark scripts run end to end in quick mode (a smoke test: no timing is asserted).

The runs set DOWNSLOPE_BENCH_SMOKE=1 (benchmarks/_common.py's smoke()): every case runs once, at
its smallest size, with no warm-up or repeats, so the whole set takes minutes, not half an hour of CI.

Each script must print its BLAS line, a line per peer and, where issue 7 sets one, its target line;
a script that crashes or stops printing them fails here rather than when someone wants numbers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# Each smoke run is a subprocess that runs a whole benchmark (5-10 s): CI runs them, the everyday run does not.
pytestmark = pytest.mark.slow


def run_quick(script: str, *extra: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DOWNSLOPE_BENCH_SMOKE="1")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *extra],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("mlp_digits.py", ["BLAS:", "downslope", "numpy (hand-written)", "target: downslope/torch <= 0.40"]),
        ("mlp_large.py", ["BLAS:", "s/epoch", "GEMM roofline", "8 GEMMs alone", "target: downslope/numpy <= 1.10"]),
        ("cnn_digits.py", ["BLAS:", "downslope", "target: downslope/torch <= 1.00"]),
        ("core_mlp.py", ["BLAS:", "downslope/numpy"]),
        ("conv_speed.py", ["BLAS:", "CPU:", "depthwise 3x3 s1", "MobileNet-like", "Conv1d 64->64 k7", "batch 1"]),
        ("activations.py", ["BLAS:", "CPU:", "Sigmoid 256x256", "geometric mean"]),
        ("normalization.py", ["BLAS:", "CPU:", "LayerNorm 256x256", "BatchNorm2d eval 64x64x16x16", "geometric mean"]),
        ("conv_transpose_speed.py", ["BLAS:", "CPU:", "ConvT2d(16,1,3,s2,p1,op1)", "DCGAN-like decoder"]),
        (
            "conv_recurrent.py",
            ["BLAS:", "CPU:", "load average", "target: cnn_mnist", "target: cnn_cifar", "target: lstm", "target: gru"]
            + ["target: word_lm"]
            + ["peak memory: cnn_mnist", "peak memory: cnn_cifar"],
        ),
        ("startup_memory.py", ["import downslope", "downslope --help", "peak memory"]),
        ("gpt_blocks.py", ["BLAS:", "CPU:", "d_model 128 sdpa", "d_model 128 manual", "d_model 256 manual"]),
        ("gradient_penalty.py", ["BLAS:", "CPU:", "WGAN-GP critic step"]),
        ("distances.py", ["BLAS:", "CPU:", "pdist p=1", "cdist p=inf", "max_pool1d(x, L)", "geometric mean"]),
        (
            "tensor_ops.py",
            ["BLAS:", "CPU:", "clamp(min=T, max=T)", "index_put_ accumulate", "x.std(1)", "geometric mean"],
        ),
        (
            "inference_paths.py",
            [
                "BLAS:",
                "CPU:",
                "MaxPool1d(2)",
                "FractionalMaxPool2d",
                "mode='circular'",
                "ResNet-18 (CIFAR)",
                "embedding_bag",
                "x[idx]",
                "target: wide Conv2d",
            ],
        ),
        (
            "elementwise_misc.py",
            ["BLAS:", "CPU:", "fmod", "cummax fwd+bwd", "gather", "geometric mean"],
        ),
        (
            "special_functions.py",
            ["BLAS:", "CPU:", "erf float32 (-0.9, 0.9)", "bessel_y1 float64 wide", "geometric mean"],
        ),
        (
            "distributions_rsample.py",
            ["BLAS:", "CPU:", "Gamma(c, 1) rsample backward", "zeta(3, q ~ -2e4)", "geometric mean"],
        ),
        (
            "fft_sort.py",
            ["BLAS:", "CPU:", "rfft 64x16x1024", "topk k=2 1024x64 fwd+bwd", "kthvalue k=100", "geometric mean"],
        ),
        ("batch_metrics.py", ["CPU:", "BLAS:", "binary scores per epoch", "joined/running"]),
        ("row_scatter.py", ["CPU:", "BLAS:", "x[idx] backward", "NumPy path"]),
        ("grad_modes.py", ["CPU:", "BLAS:", "after / before", "inference_mode / no_grad"]),
        ("shape_size.py", ["CPU:", "BLAS:", "MLP 64-64-10 step x4", "200 small ops + backward", "Size/tuple"]),
        ("data_loader.py", ["CPU:", "BLAS:", "TensorDataset batch 64 num_workers=2", "Python __getitem__", "ratio"]),
        ("safetensors_load.py", ["CPU:", "downslope load_safetensors", "safetensors.numpy.load_file", "ratio"]),
        (
            "embedding_training.py",
            ["BLAS:", "CPU:", "MF 1M+200k x 32", "word2vec", "two-tower", "dense Embedding"]
            + ["target: downslope/torch <= 1.00"],
        ),
        ("metrics_confusion.py", ["CPU:", "BLAS:", "macro F1", "ds/sklearn"]),
        (
            "jacobians_small.py",
            ["BLAS:", "CPU:", "mlp jacobian(vectorize)", "pinn func.hessian", "inv 1000x3x3 +backward"]
            + ["target: jacobian(vectorize)/jacfwd <= 3.0x torch", "geometric mean ratio"],
        ),
        (
            "distributions_rollout.py",
            ["BLAS:", "CPU:", "Categorical.sample()", "PPO loop, Categorical", "calls: geometric mean ratio"],
        ),
    ],
)
def test_benchmark_runs_in_quick_mode(script: str, expected: list[str]) -> None:
    pytest.importorskip("torch")
    out = run_quick(script)
    for text in expected:
        assert text in out, f"{script} --quick did not print {text!r}:\n{out}"


def test_transformer_benchmark_runs_in_quick_mode() -> None:
    pytest.importorskip("torch")
    out = run_quick("transformer.py")
    for text in ["BLAS:", "TransformerEncoder 2 layers", "downslope", "torch", "target: downslope/torch <= 1.00"]:
        assert text in out, f"transformer.py --quick did not print {text!r}:\n{out}"


def test_read_tables_benchmark_runs_in_quick_mode() -> None:
    out = run_quick("read_tables.py")
    for text in [
        "fast CSV parser (pyarrow) installed:",
        "100,000 rows x 11 columns",
        "downslope (no pyarrow)",
        "numpy",
    ]:
        assert text in out, f"read_tables.py --quick did not print {text!r}:\n{out}"
    assert "failed" not in out and "timed out" not in out, out


def test_gpu_benchmark_says_so_and_exits_cleanly_without_a_gpu() -> None:
    import downslope as ds

    if ds.cuda.is_available():
        pytest.skip("a GPU is present: run benchmarks/gpu.py itself")
    out = run_quick("gpu.py")
    assert "no CUDA GPU here" in out and 'pip install "downslope[cuda]"' in out, out


def test_gpu_benchmark_dry_run_runs_every_step_of_the_script_on_the_strict_device() -> None:
    pytest.importorskip("torch")
    out = run_quick("gpu.py", "--dry-run")
    rows = [line for line in out.splitlines() if line.startswith(("MLP ", "CNN "))]
    assert len(rows) == 4 and "FAILED" not in out, out
    for row in rows:
        assert row.endswith("none"), f"a training step synchronised: {row}"  # the synchronisation check ran
        assert float(row.split()[-2]) <= 1e-4, row  # parameters after 10 steps as on the CPU
    assert "ds/cupy" in out and "targets:" in out, out


@pytest.mark.slow
def test_rnn_cells_benchmark_runs_in_quick_mode() -> None:
    pytest.importorskip("torch")
    out = run_quick("rnn_cells.py")
    for text in ["BLAS:", "LSTMCell loop", "downslope", "torch", "ratio downslope/torch"]:
        assert text in out, f"rnn_cells.py --quick did not print {text!r}:\n{out}"
