"""Ranks agree before training (every setting, the data) and during it (stopping, the final
parameters): mismatches end the job with one line naming the difference, never a hang or silently
diverging copies of the model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from downslope import distributed as dist
from downslope.distributed import World
from downslope.distributed.agreement import check_same_config, plain

WORKER = Path(__file__).with_name("mpi_worker.py")


class _FakeComm:
    """Rank 0 of a two-rank world whose partner sends ``theirs`` (JSON settings)."""

    rank, size = 0, 2

    def __init__(self, theirs: dict[str, Any]) -> None:
        self.theirs = json.dumps({k: plain(v) for k, v in theirs.items()}, sort_keys=True).encode()
        self.calls = 0

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        import hashlib

        self.calls += 1
        other = self.theirs if len(data) != 32 else hashlib.sha256(self.theirs).digest()
        return [data, other]


def _world(theirs: dict[str, Any]) -> World:
    return World(rank=0, world_size=2, backend="mpi", comm=_FakeComm(theirs))


def test_agreeing_ranks_exchange_only_a_digest() -> None:
    settings = {"epochs": 3, "lr": 0.1, "hidden": [8, 4], "out": "a"}
    world = _world({k: v for k, v in settings.items() if k != "out"})  # what the partner sends, "out" left out
    check_same_config(dict(settings, out="b"), world=world, ignore=("out",))
    assert world.comm.calls == 1


def test_the_differing_keys_are_named_with_each_ranks_value_on_one_line() -> None:
    mine = {"epochs": 3, "schedule": "none", "seed": 0, "hidden": [8], "lr": float("nan")}
    theirs = dict(mine, epochs=5, schedule="cosine", lr=float("nan"))
    with pytest.raises(dist.DistributedError) as info:
        check_same_config(mine, world=_world(theirs))
    message = str(info.value)
    assert "\n" not in message
    assert "epochs is 3 on rank 0 but 5 on rank 1" in message
    assert "schedule is 'none' on rank 0 but 'cosine' on rank 1" in message
    assert "seed" not in message and "hidden" not in message and "lr" not in message  # equal, NaN included


def test_differing_training_data_says_that_fit_shards_the_data_itself() -> None:
    with pytest.raises(dist.DistributedError, match=r"give every rank the whole data set, not its part\.$"):
        check_same_config({"training data": "50 samples"}, world=_world({"training data": "49 samples"}))
    with pytest.raises(dist.DistributedError) as info:
        check_same_config({"epochs": 3}, world=_world({"epochs": 4}))
    assert "whole data set" not in str(info.value)


def test_a_key_set_on_one_rank_only_is_named() -> None:
    with pytest.raises(dist.DistributedError, match=r"patience is '<not set>' on rank 0 but 10 on rank 1"):
        check_same_config({"epochs": 3}, world=_world({"epochs": 3, "patience": 10}))


def test_plain_values_never_carry_addresses() -> None:
    assert plain({"f": lambda: 0}) == plain({"f": lambda: 1}) == {"f": "function"}
    assert plain(np.zeros(3)) != plain(np.ones(3))
    assert plain((1, np.float32(2.5))) == [1, 2.5]


def test_refuse_multi_process_reads_only_the_launchers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    with pytest.raises(
        dist.DistributedError, match="downslope compare runs in one process only, but an MPI launcher started 3"
    ):
        dist.refuse_multi_process("downslope compare")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
    dist.refuse_multi_process("downslope compare")
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    with pytest.raises(dist.DistributedError, match="started 4"):
        dist.refuse_multi_process("downslope lr-find")


# ---------------------------------------------------------------------- under mpiexec
# A disagreement must end the job at once, not after the collective watchdog (30 minutes): the bound
# leaves room for two interpreters starting on a loaded 2-core machine (about 3 s quiet, 5 s at load 9).
PROMPT_S = 20


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_", "PRTE_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return env


def _launch(cmd: list[str], timeout: float = 60, cwd: Path | None = None) -> tuple[int, str, str, float]:
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung for {timeout} s: {' '.join(cmd)}\n{exc.stdout}\n{exc.stderr}")
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line or "Traceback" in line]


BASE = ["--data", "blobs", "--hidden", "4", "--epochs", "3", "--batch-size", "full", "--patience", "0", "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "rank0, rank1, named",
    [
        (["--epochs", "3"], ["--epochs", "5"], "epochs is 3 on rank 0 but 5 on rank 1"),
        (["--schedule", "none"], ["--schedule", "cosine"], "schedule is 'none' on rank 0 but 'cosine' on rank 1"),
        (["--seed", "0"], ["--seed", "1"], "seed is 0 on rank 0 but 1 on rank 1"),
        (["--hidden", "4"], ["--hidden", "8"], "hidden is [4] on rank 0 but [8] on rank 1"),
        (["--model", "mlp"], ["--model", "linear"], "model is 'mlp' on rank 0 but 'linear' on rank 1"),
        (["--data", "blobs"], ["--data", "moons"], "data is 'blobs' on rank 0 but 'moons' on rank 1"),
    ],
    ids=["epochs", "schedule", "seed", "hidden", "model", "data"],
)
def test_train_with_different_settings_per_rank_ends_with_one_line(
    mpiexec: list[str], tmp_path: Path, rank0: list[str], rank1: list[str], named: str
) -> None:
    command = [sys.executable, "-m", "downslope", "train", *BASE, "--out", str(tmp_path / "run")]
    cmd = [*mpiexec, "-n", "1", *command, *rank0, ":", "-n", "1", *command, *rank1]
    code, _, err, seconds = _launch(cmd)
    assert code != 0
    lines = _error_lines(err)
    assert lines and all(line == lines[0] for line in lines), err  # the same one line from each rank
    assert lines[0].startswith("downslope train: error: the ranks disagree on the configuration"), err
    assert named in lines[0]
    assert seconds < PROMPT_S, f"{seconds:.1f} s"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_with_the_same_name_but_different_data_ends_with_one_line(mpiexec: list[str], tmp_path: Path) -> None:
    # Same config on both ranks (a relative path), but each rank's working directory holds another file.
    rows = np.random.default_rng(0).standard_normal((40, 3))
    for rank in (0, 1):
        (tmp_path / f"node{rank}").mkdir()
        rows[0, 0] += rank
        text = "a,b,y\n" + "\n".join(",".join(f"{v:.6f}" for v in r) for r in rows) + "\n"
        (tmp_path / f"node{rank}" / "data.csv").write_text(text)
    command = [sys.executable, "-m", "downslope", "train", *BASE, "--data", "data.csv", "--out", "run"]
    cmd = [*mpiexec, "-n", "1", "-wdir", str(tmp_path / "node0"), *command]
    cmd += [":", "-n", "1", "-wdir", str(tmp_path / "node1"), *command]
    code, _, err, seconds = _launch(cmd)
    assert code != 0
    lines = _error_lines(err)
    assert lines and lines[0].startswith(
        "downslope train: error: the ranks disagree on the settings of distributed.fit"
    )
    assert "training data is" in lines[0] and "on rank 1" in lines[0], err
    assert seconds < PROMPT_S, f"{seconds:.1f} s"


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, named",
    [("different_epochs", "epochs is 3 on rank 0 but 4 on rank 1"), ("different_data", "training data is")],
)
def test_distributed_fit_refuses_settings_that_differ(run_mpi: Any, mode: str, named: str) -> None:
    launch = run_mpi(mode, n=2, timeout=60)
    assert launch.returncode != 0
    assert "the ranks disagree on the settings of distributed.fit" in launch.output and named in launch.output
    assert launch.seconds < PROMPT_S


@pytest.mark.slow
@pytest.mark.parametrize("command", ["compare", "lr-find"])
def test_compare_and_lr_find_refuse_to_run_under_mpiexec(mpiexec: list[str], tmp_path: Path, command: str) -> None:
    cmd = [
        *mpiexec,
        "-n",
        "2",
        sys.executable,
        "-m",
        "downslope",
        command,
        "--data",
        "line",
        "--out",
        str(tmp_path / "x"),
    ]
    code, _, err, seconds = _launch(cmd)
    assert code != 0
    lines = _error_lines(err)
    assert lines and all(line == lines[0] for line in lines), err
    assert lines[0] == (
        f"downslope {command}: error: downslope {command} runs in one process only, but an MPI launcher started 2; "
        "run it without mpiexec/srun (data-parallel training is 'downslope train' under mpiexec)"
    )
    assert seconds < PROMPT_S and not (tmp_path / "x").exists()


def _outcome(out: Path, rank: int) -> tuple[dict[str, np.ndarray], int, str]:
    with np.load(out / f"rank{rank}.npz") as data:
        params = {k[len("param/") :]: data[k] for k in data.files if k.startswith("param/")}
        epochs = int(data["epochs"])
    return params, epochs, (out / f"reason{rank}.txt").read_text()


@pytest.mark.slow
def test_early_stopping_on_one_ranks_view_stops_both_with_the_same_parameters(run_mpi: Any) -> None:
    launch = run_mpi("early_stop_on_one_rank", n=2, timeout=60)
    assert launch.returncode == 0, launch.output
    (p0, e0, r0), (p1, e1, r1) = _outcome(launch.out_dir, 0), _outcome(launch.out_dir, 1)
    assert e0 == e1 == 2
    assert r1.startswith("early stopping") and r0 == f"{r1} (on rank 1)"
    restored = dict(np.load(launch.out_dir / "restored.npz"))
    for key in p0:
        np.testing.assert_array_equal(p0[key], p1[key], err_msg=key)
        np.testing.assert_array_equal(p0[key], restored[key], err_msg=key)  # rank 1's restored best


@pytest.mark.slow
def test_sigint_to_one_rank_stops_both_cleanly_with_a_checkpoint(mpiexec: list[str], tmp_path: Path) -> None:
    from downslope.serialization import load

    cmd = [*mpiexec, "-n", "2", sys.executable, str(WORKER), "interrupted", str(tmp_path)]
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "pid1").exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "pid1").exists(), "rank 1 never started training"
        os.kill(int((tmp_path / "pid1").read_text()), signal.SIGINT)
        output, _ = job.communicate(timeout=30)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode == 0, output
    (p0, e0, r0), (p1, e1, r1) = _outcome(tmp_path, 0), _outcome(tmp_path, 1)
    assert e0 == e1 < 100_000
    assert r1 == f"interrupted by SIGINT: finished epoch {e1} and stopped" and r0 == f"{r1} (on rank 1)"
    for key in p0:
        np.testing.assert_array_equal(p0[key], p1[key], err_msg=key)
    checkpoint = load(tmp_path / "ckpt" / "last.ckpt")  # written by rank 0 after the agreed last epoch
    assert checkpoint["epoch"] == e0 and checkpoint["stop_reason"] == r0
    for key in p0:
        np.testing.assert_array_equal(checkpoint["model"][key], p0[key], err_msg=key)


class _PartnerComm:
    """Rank 0 of two: the partner's contributions to each Allreduce and Allgather are scripted."""

    rank, size = 0, 2

    def __init__(self, sums: list[list[float]], gathers: list[bytes]) -> None:
        self.sums, self.gathers = sums, gathers

    def allreduce_sum(self, buf: np.ndarray) -> None:
        buf += np.asarray(self.sums.pop(0))

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        return [data, self.gathers.pop(0)]


def _agreement(comm: _PartnerComm, epochs: int) -> Any:
    from downslope.distributed.training import _AgreeOnStopping
    from downslope.train.callbacks import TrainingState

    callback = _AgreeOnStopping(World(rank=0, world_size=2, backend="mpi", comm=comm))
    callback.set_trainer(TrainingState(params={"epochs": epochs}))
    return callback


def test_a_rank_at_its_epoch_limit_stops_the_others() -> None:
    # This rank was given 5 epochs, the partner 3: after epoch 3 the partner is at its limit.
    callback = _agreement(_PartnerComm(sums=[[0.0, 1.0]], gathers=[]), epochs=5)
    callback.on_epoch_end(2)
    assert callback.trainer.stop_training
    assert "1 of 2 ranks reached their epoch limit" in callback.trainer.stop_reason
    assert callback.trainer.stop_kind == "max_epochs"


def test_a_stop_on_the_partner_is_taken_with_its_reason_and_kind() -> None:
    callback = _agreement(_PartnerComm(sums=[[1.0, 0.0]], gathers=[b"time_limit\ntime limit"]), epochs=5)
    callback.on_batch_end(0)
    assert callback.trainer.stop_training and callback.trainer.stop_reason == "time limit (on rank 1)"
    assert callback.trainer.stop_kind == "time_limit"
    assert callback.decider == 1


def test_no_stop_when_every_rank_ends_together() -> None:
    callback = _agreement(_PartnerComm(sums=[[0.0, 1.0]], gathers=[]), epochs=3)
    callback.on_epoch_end(2)  # both at their last epoch: the loop ends by itself, no stop reason
    assert not callback.trainer.stop_training and callback.trainer.stop_reason is None


@pytest.mark.slow
def test_a_killed_data_parallel_run_resumes_under_mpiexec_exactly(mpiexec: list[str], tmp_path: Path) -> None:
    from downslope import runs
    from downslope.serialization import load

    train = [sys.executable, "-m", "downslope", "train", "--data", "digits", "--epochs", "60", "--quiet"]
    job = subprocess.Popen(
        [*mpiexec, "-n", "2", *train, "--out", str(tmp_path / "a")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), start_new_session=True,
    )  # fmt: skip
    checkpoint = runs.staging_path(tmp_path / "a") / runs.CHECKPOINT_FILE
    try:
        deadline = time.monotonic() + 60
        while not checkpoint.is_file() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        # kill -9 of the whole job, mid-run: the launcher and every rank (which Open MPI starts in
        # sessions of their own, so they are found by the run's unique --out)
        os.killpg(job.pid, signal.SIGKILL)
        subprocess.run(["pkill", "-9", "-f", f"out {tmp_path / 'a'}$"], check=False)
        job.wait()
    assert load(checkpoint)["epoch"] < 60, "the run ended before it could be killed"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # until the killed ranks have let go of the run's lock
        held = runs._try_lock(checkpoint.parent)
        if held is not None:
            os.close(held)
            break
        time.sleep(0.1)
    # one process would see half the batch and another sample order: refused, saying how to continue
    code, _, err, _ = _launch(train[:4] + ["--resume", str(tmp_path / "a")])
    assert code == 2 and "trained on 2 process(es) and this is 1" in err and "mpiexec -n 2" in err, err
    code, _, err, _ = _launch([*mpiexec, "-n", "2", *train[:4], "--resume", str(tmp_path / "a"), "--quiet"])
    assert code == 0, err
    code, _, err, _ = _launch([*mpiexec, "-n", "2", *train, "--out", str(tmp_path / "b")])
    assert code == 0, err
    resumed, straight = load(tmp_path / "a" / "model.ds")["model"], load(tmp_path / "b" / "model.ds")["model"]
    for key in straight:
        np.testing.assert_array_equal(resumed[key].numpy(), straight[key].numpy(), err_msg=key)
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["processes"] == 2


def test_nested_settings_name_their_first_differing_entry_past_a_long_common_start() -> None:
    # an optimizer's settings: both ranks' JSON share a long prefix, so the whole values cut short would
    # show no difference; the message goes down to the differing entry
    group = {"amsgrad": False, "betas": [0.9, 0.999], "capturable": False, "eps": 1e-8, "weight_decay": 0.0}
    mine = {"optimizer settings": {"param_groups": [dict(group, lr=0.1)]}, "epochs": 3}
    theirs = {"optimizer settings": {"param_groups": [dict(group, lr=0.2)]}, "epochs": 3}
    with pytest.raises(dist.DistributedError) as info:
        check_same_config(mine, world=_world(theirs))
    assert "optimizer settings differ: param_groups[0].lr is 0.1 on rank 0 but 0.2 on rank 1" in str(info.value)


def test_a_nested_entry_set_on_one_rank_only_and_a_list_of_another_length_are_named() -> None:
    scheduler = {"_get_lr_called_within_step": False, "_is_initial": False, "step_size": 2, "gamma": 0.1}
    mine = {"scheduler settings": scheduler, "hidden": [8, 4]}
    theirs = {"scheduler settings": dict(scheduler, last_epoch=0), "hidden": [8, 4, 2]}
    with pytest.raises(dist.DistributedError) as info:
        check_same_config(mine, world=_world(theirs))
    message = str(info.value)
    assert "scheduler settings differ: last_epoch is '<not set>' on rank 0 but 0 on rank 1" in message
    assert "hidden is [8, 4] on rank 0 but [8, 4, 2] on rank 1" in message
