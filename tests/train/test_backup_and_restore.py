"""Keras 3's BackupAndRestore: a fit interrupted (an exception, Ctrl-C, kill -9) and called again with the
same callback ends with the uninterrupted run's weights, bit for bit; the backup goes when the run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import downslope as ds
from downslope import nn, optim
from downslope.errors import CheckpointError, ConfigError
from downslope.train import BackupAndRestore, Callback, EarlyStopping, fit

RNG = np.random.default_rng(0)
X = RNG.standard_normal((40, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 40)


class Interrupt(Callback):
    """Raises (once) at batch ``batch`` of the 0-based ``epoch``: a crash in the middle of an epoch."""

    def __init__(self, epoch: int, batch: int = 1) -> None:
        self.at = (epoch, batch)
        self.epoch = -1
        self.fired = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if not self.fired and (self.epoch, batch) == self.at:
            self.fired = True
            raise RuntimeError("interrupted")


def _run(callbacks=(), epochs=6, **kw):
    """A run whose trajectory depends on everything a resume must restore: dropout (the library generator),
    Adam's moments, a schedule, shuffling (the loader's stream) and EarlyStopping's count."""
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    stopper = EarlyStopping(monitor="loss", patience=100)

    def call():
        return fit(model, nn.CrossEntropyLoss(), opt, (X, Y), epochs=epochs, batch_size=8, scheduler=sched,
                   callbacks=[stopper, *callbacks], verbose=0, **kw)  # fmt: skip

    return model, call


def _weights(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def _uninterrupted(epochs=6):
    model, call = _run(epochs=epochs)
    history = call()
    return _weights(model), history


def test_an_exception_in_epoch_3_then_fit_again_ends_with_the_uninterrupted_weights(tmp_path):
    want, want_history = _uninterrupted()
    backup = BackupAndRestore(tmp_path / "backup")
    model, call = _run([backup, Interrupt(epoch=2)])
    with pytest.raises(RuntimeError, match="interrupted"):
        call()
    assert backup.path.is_file()  # epochs 1 and 2 are backed up
    assert int(ds.load(str(backup.path))["epoch"]) == 2
    history = call()  # the same arguments, the same callback
    for got, expected in zip(_weights(model), want):
        np.testing.assert_array_equal(got, expected)
    # the History holds the whole run (the epochs before the interruption included), as resume_from gives it
    assert history.epoch == list(range(6)) and history["epoch"] == [1, 2, 3, 4, 5, 6]
    assert history["loss"] == want_history["loss"]
    assert not backup.path.exists() and not backup.backup_dir.exists()  # finished: the backup is gone


def test_ctrl_c_keeps_the_backup_and_the_next_fit_continues_exactly(tmp_path):
    want, _ = _uninterrupted()

    class CtrlC(Callback):
        fired = False

        def on_train_batch_end(self, batch, logs=None):
            if self.trainer.epoch == 3 and not self.fired:
                CtrlC.fired = True
                signal.raise_signal(signal.SIGINT)  # fit finishes epoch 4 and stops

    backup = BackupAndRestore(tmp_path)
    model, call = _run([backup, CtrlC()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = call()
    assert first.stop_kind == "interrupted" and len(first) == 4
    assert backup.path.is_file() and int(ds.load(str(backup.path))["epoch"]) == 4
    second = call()
    assert second.stop_kind == "max_epochs" and len(second) == 6
    for got, expected in zip(_weights(model), want):
        np.testing.assert_array_equal(got, expected)


def test_a_stopping_rule_ends_the_run_and_deletes_the_backup_unless_told_to_keep_it(tmp_path):
    for keep in (False, True):
        backup = BackupAndRestore(tmp_path / str(keep), delete_checkpoint=not keep)
        ds.manual_seed(0)
        model = nn.Linear(5, 3)
        history = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0), (X, Y), epochs=10,
                      callbacks=[EarlyStopping(monitor="loss", patience=1), backup], verbose=0)  # fmt: skip
        assert history.stop_kind == "early_stopping" and len(history) == 2
        assert backup.path.exists() == keep
        if keep:  # the kept backup is of a finished run: the next fit trains nothing more
            again = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0), (X, Y), epochs=10,
                        callbacks=[EarlyStopping(monitor="loss", patience=1), backup], verbose=0)  # fmt: skip
            assert len(again) == 2 and again.stop_kind == "early_stopping"


def test_a_backup_every_n_batches_resumes_by_keras_rule_with_a_warning(tmp_path):
    # 5 batches per epoch, a backup every 3 batches: after batches 3 (epoch 1), 6 and 9 (epoch 2: its
    # batches 1 and 4); an interruption at epoch 3 batch 2 leaves the backup of epoch 2 batch 4.
    backup = BackupAndRestore(tmp_path, save_freq=3)
    model, call = _run([backup, Interrupt(epoch=2, batch=1)])
    with pytest.raises(RuntimeError):
        call()
    saved = ds.load(str(backup.path))
    assert int(saved["epoch"]) == 1 and int(saved["within_epoch"]) == 4
    with pytest.warns(UserWarning, match="after batch 4 of epoch 2.*trained again from its first batch"):
        history = call()
    # epoch 2 is trained again (Keras' rule): the History holds epoch 1 from the first call, then 2 to 6
    assert history["epoch"] == [1, 2, 3, 4, 5, 6]


def test_a_backup_every_n_batches_counts_batches_as_keras(tmp_path):
    seen = []
    backup = BackupAndRestore(tmp_path, save_freq=3, delete_checkpoint=False)
    original = backup._save

    def spy(within_epoch=None):
        seen.append((backup.trainer.epoch, within_epoch))
        original(within_epoch)

    backup._save = spy
    _, call = _run([backup], epochs=3)
    call()
    assert seen == [(0, 3), (1, 1), (1, 4), (2, 2), (2, 5)]  # every 3rd of 15 batches (5 per epoch)


def test_arguments_and_combinations_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="save_freq must be 'epoch' or a positive integer"):
        BackupAndRestore(tmp_path, save_freq=0)
    with pytest.raises(ConfigError, match="backup_dir must name a directory"):
        BackupAndRestore("")
    model = nn.Linear(5, 3)
    args = (model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), (X, Y))
    with pytest.raises(ConfigError, match="2 BackupAndRestore callbacks"):
        fit(*args, callbacks=[BackupAndRestore(tmp_path / "a"), BackupAndRestore(tmp_path / "b")], verbose=0)
    with pytest.raises(ConfigError, match="same directory"):
        fit(*args, callbacks=[BackupAndRestore(tmp_path)], checkpoint_dir=tmp_path, verbose=0)
    (tmp_path / "w").mkdir()
    ds.save({"model": model.state_dict()}, str(tmp_path / "w" / "backup.ckpt"))  # weights only: not a backup
    with pytest.raises(CheckpointError, match="cannot resume from .*backup.ckpt.*remove it"):
        fit(*args, callbacks=[BackupAndRestore(tmp_path / "w")], verbose=0)


def test_a_backup_wins_over_resume_from_and_resume_from_starts_a_run_without_one(tmp_path):
    want, _ = _uninterrupted()
    model, call = _run(checkpoint_dir=tmp_path / "c", epochs=2)
    call()  # a checkpoint after epoch 2
    backup = BackupAndRestore(tmp_path / "b")
    model, call = _run([backup, Interrupt(epoch=4)], resume_from=tmp_path / "c")
    with pytest.raises(RuntimeError):
        call()  # started from the checkpoint (epochs 3 and 4 backed up)
    assert int(ds.load(str(backup.path))["epoch"]) == 4
    call()  # the backup's epoch 4, not resume_from's epoch 2
    for got, expected in zip(_weights(model), want):
        np.testing.assert_array_equal(got, expected)


_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import downslope as ds
    from downslope import nn, optim, serialization
    from downslope.train import BackupAndRestore, Callback, fit

    mode, backup_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 5)).astype(np.float32), rng.integers(0, 3, 40)

    class KillInEpoch4(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.trainer.epoch == 3 and batch == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    if mode == "kill-while-backing-up-epoch-4":
        write = serialization._write_archive
        epochs_written = []

        def half_then_kill(handle, tree, arrays):
            epochs_written.append(1)
            if len(epochs_written) == 4:  # the 4th backup: half a file, then the process dies
                handle.write(b"PK" + b"\\0" * 100)
                handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            write(handle, tree, arrays)

        serialization._write_archive = half_then_kill

    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    opt = optim.Adam(model.parameters(), lr=0.01)
    callbacks = [BackupAndRestore(backup_dir)] if mode != "plain" else []
    if mode == "kill-in-epoch-4":
        callbacks.append(KillInEpoch4())
    fit(model, nn.CrossEntropyLoss(), opt, (x, y), epochs=6, batch_size=8, callbacks=callbacks, verbose=0)
    np.save(out, np.concatenate([p.detach().numpy().ravel() for p in model.parameters()]))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["kill-in-epoch-4", "kill-while-backing-up-epoch-4"])
def test_a_process_killed_with_sigkill_restarts_from_the_backup(tmp_path, kill):
    script = tmp_path / "train.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    src = str(Path(ds.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])

    def run(mode, out):
        return subprocess.run([sys.executable, str(script), mode, str(tmp_path / "backup"), str(tmp_path / out)],
                              env=env, capture_output=True, text=True, timeout=300)  # fmt: skip

    plain = run("plain", "want.npy")
    assert plain.returncode == 0, plain.stderr
    killed = run(kill, "unused.npy")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    saved = ds.load(str(tmp_path / "backup" / "backup.ckpt"))  # the last whole backup is there and readable
    assert int(saved["epoch"]) == 3
    restarted = run("restart", "got.npy")
    assert restarted.returncode == 0, restarted.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "got.npy"), np.load(tmp_path / "want.npy"))
    assert not (tmp_path / "backup").exists()
