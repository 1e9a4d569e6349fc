"""distributed.fit: 2 ranks equal one process with the double batch (parameters, loss, validation);
stopping is agreed on; only rank 0 writes; the linear scaling rule."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

import downslope as ds
from downslope import distributed as dist
from downslope import nn, optim
from downslope.distributed import World
from downslope.distributed.training import LinearScalingRule, _rank_callbacks, _shardable, linear_scaling_factor
from downslope.distributed.world import _SelfComm
from downslope.errors import ConfigError
from downslope.train.callbacks import TrainingState

RTOL = 1e-5


def _one_process() -> World:
    return World(rank=0, world_size=1, backend="single", comm=_SelfComm())


def test_fit_on_two_ranks_matches_fit_on_one_with_the_double_batch(
    two_process_results: list[dict[str, np.ndarray]], worker: ModuleType
) -> None:
    x, y = worker.make_data()
    ds.manual_seed(worker.MODEL_SEED)
    model = worker.make_model()
    opt = worker.make_optimizer("adam", list(model.parameters()))
    # the order one process reads: each epoch's permutation in batches of 2B
    loader = dist.DistributedDataLoader(
        (x, y), batch_size=2 * worker.PER_RANK_BATCH, seed=worker.ORDER_SEED, world=_one_process()
    )
    options = worker.fit_kwargs()
    options.pop("seed")
    history = ds.fit(model, nn.MSELoss(), opt, loader, **options)
    for key, ref in worker.host_state(model).items():
        ours = two_process_results[0][f"fit/{key}"]
        np.testing.assert_array_equal(ours, two_process_results[1][f"fit/{key}"])
        np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-6 * max(1.0, np.abs(ref).max()), err_msg=key)
    # logged numbers are global: the mean training loss and the validation over both shards (7 + 6)
    for key in ("loss", "val_loss", "val_mae"):
        for rank in range(2):
            np.testing.assert_allclose(
                two_process_results[rank][f"history/{key}"], history[key], rtol=RTOL, err_msg=key
            )


def test_a_stop_on_one_rank_stops_every_rank(run_mpi: Any) -> None:
    # Without the agreement rank 0 would wait in the next Allreduce forever.
    launch = run_mpi("stop", n=2, timeout=60)
    assert launch.returncode == 0, launch.output
    for rank in range(2):
        epochs, reason = (launch.out_dir / f"stop{rank}.txt").read_text().split("|")
        assert epochs == "1" and "rank one had enough" in reason
    assert "(on rank 1)" in (launch.out_dir / "stop0.txt").read_text()


def test_in_one_process_it_is_fit() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)).astype(np.float32)
    results = []
    for use_dist in (True, False):
        ds.manual_seed(1)
        model = nn.Linear(3, 1)
        opt = optim.SGD(model.parameters(), lr=0.1)
        if use_dist:
            history = dist.fit(model, nn.MSELoss(), opt, (x, y), batch_size=8, epochs=4, seed=3)
        else:
            loader = dist.DistributedDataLoader((x, y), batch_size=8, seed=3, world=_one_process())
            history = ds.fit(model, nn.MSELoss(), opt, loader, epochs=4)
        results.append((model.weight.detach().numpy().copy(), history["loss"]))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


def test_validation_split_holds_out_what_fit_holds_out() -> None:
    """dist.fit and ds.fit hold out the same rows for the same seed (one rule: split_validation)."""
    from downslope.data import ArrayDataset
    from downslope.train.inputs import split_validation

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 2)).astype(np.float32)
    y = (x @ np.array([[1.0], [-1.0]], dtype=np.float32)).astype(np.float32)
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    history = dist.fit(model, nn.MSELoss(), opt, (x, y), batch_size=None, epochs=1, validation_split=0.25, seed=5)
    _, held_out = split_validation(ArrayDataset(x, y), 0.25, seed=5)
    expected = ds.train.evaluate(model, nn.MSELoss(), held_out)
    assert history["val_loss"][-1] == pytest.approx(expected["loss"], rel=1e-6)


def test_linear_scaling_factor_ramps_from_one_to_w() -> None:
    assert [linear_scaling_factor(s, 4, warmup_steps=4) for s in range(5)] == [1.75, 2.5, 3.25, 4.0, 4.0]
    assert linear_scaling_factor(0, 8) == 8.0


def test_linear_scaling_on_two_ranks_matches_one_process_with_the_scaled_rate(
    two_process_results: list[dict[str, np.ndarray]], worker: ModuleType
) -> None:
    # 2 ranks, batch B, rate lr scaled by the rule = 1 process, batch 2B, rate lr * factor(step) by hand
    x, y = worker.make_data()
    ds.manual_seed(worker.MODEL_SEED)
    model = worker.make_model()
    opt = optim.SGD(model.parameters(), lr=worker.SCALED_LR)
    loader = dist.DistributedDataLoader(
        (x, y), batch_size=2 * worker.PER_RANK_BATCH, seed=worker.ORDER_SEED, world=_one_process()
    )
    step = 0
    for _ in range(2):
        for xb, yb in loader:
            opt.param_groups[0]["lr"] = worker.SCALED_LR * linear_scaling_factor(step, 2, worker.WARMUP_STEPS)
            opt.zero_grad()
            nn.MSELoss()(model(xb), yb).backward()
            opt.step()
            step += 1
    assert step > worker.WARMUP_STEPS  # the ramp and the full factor were both used
    for key, ref in worker.host_state(model).items():
        for rank in range(2):
            ours = two_process_results[rank][f"lr_scaling/{key}"]
            np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-6 * max(1.0, np.abs(ref).max()), err_msg=key)
    # the logged rate is the unscaled one
    np.testing.assert_array_equal(two_process_results[0]["lr_scaling_history/lr"], [worker.SCALED_LR] * 2)


def test_linear_scaling_rule_scales_only_during_the_update() -> None:
    class Opt:
        param_groups = [{"lr": 0.1}, {"lr": 0.01}]

    rule = LinearScalingRule(world_size=2, warmup_steps=0)
    rule.set_trainer(TrainingState(optimizer=Opt(), params={"steps": 5}))
    rule.on_batch_begin(0)
    assert [g["lr"] for g in Opt.param_groups] == [0.2, 0.02]
    rule.on_batch_end(0)
    assert [g["lr"] for g in Opt.param_groups] == [0.1, 0.01]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr_scaling": "sqrt"}, "lr_scaling must be None or 'linear', got 'sqrt'"),
        ({"warmup_steps": 5}, "warmup_steps needs lr_scaling='linear'"),
        ({"batch_size": "half"}, "batch_size must be a positive integer, None or 'full', got 'half'"),
        ({"validation_split": 1.5}, r"distributed.fit: validation_split must be a fraction in \(0, 1\), got 1.5"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    model = nn.Linear(1, 1)
    data = (np.zeros((4, 1), np.float32), np.zeros((4, 1), np.float32))
    with pytest.raises(ConfigError, match=message):
        dist.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), data, epochs=1, seed=0, **kwargs)


def test_a_dataloader_is_refused_with_the_reason() -> None:
    model = nn.Linear(1, 1)
    loader = ds.data.DataLoader((np.zeros((4, 1)), np.zeros((4, 1))), batch_size=2)
    with pytest.raises(ConfigError, match="not a DataLoader: each rank's share"):
        dist.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), loader, epochs=1)


def test_which_validation_metrics_can_be_sharded() -> None:
    assert _shardable(None) and _shardable(["accuracy", "mae", "top3_accuracy", "mse"])
    assert not _shardable(["accuracy", "f1"]) and not _shardable("r2")

    def hits(preds: Any, target: Any) -> float:
        return 1.0

    # A user's function is sharded only when its Metric says it is a mean over samples.
    assert not _shardable([hits]) and _shardable(["mse", ds.train.Metric(hits, sample_mean=True)])


def test_resume_continues_exactly(tmp_path: Any) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = np.sin(x[:, :1]).astype(np.float32)

    def run(epochs: int, **options: Any) -> tuple[np.ndarray, list[float]]:
        ds.manual_seed(2)
        model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
        opt = optim.Adam(model.parameters(), lr=0.01)
        history = dist.fit(model, nn.MSELoss(), opt, (x, y), batch_size=8, epochs=epochs, **options)
        return model[0].weight.detach().numpy().copy(), history["loss"]

    straight_w, straight_loss = run(4, seed=5)
    run(2, seed=5, checkpoint_dir=tmp_path)
    resumed_w, resumed_loss = run(4, resume_from=tmp_path)  # the seed comes from the checkpoint
    np.testing.assert_array_equal(resumed_w, straight_w)
    assert resumed_loss == straight_loss


def test_without_a_seed_the_shuffling_follows_manual_seed() -> None:
    """seed=None draws the data order's seed from the library's generator: ds.manual_seed repeats a run."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = np.sin(x[:, :1]).astype(np.float32)

    def run(manual_seed: int) -> np.ndarray:
        ds.manual_seed(manual_seed)
        model = nn.Linear(3, 1)
        dist.fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), batch_size=4, epochs=2)
        return model.weight.detach().numpy().copy()

    first, again, other = run(5), run(5), run(6)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_backup_and_restore_is_refused_across_ranks(tmp_path: Any) -> None:
    # rank 0 alone would write (and read) the backup: a restart would resume rank 0 only
    backup = ds.train.BackupAndRestore(tmp_path / "backup")
    with pytest.raises(ConfigError, match="BackupAndRestore is not supported across ranks"):
        _rank_callbacks([backup], _one_process(), None, None, 0)
