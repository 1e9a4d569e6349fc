"""SIGHUP (a closed terminal, an ended SSH session) stops ``downslope train`` as SIGTERM does: the epoch under
way is finished and kept, resumable, one line, exit status 130. A signal arriving while the command's modules
are still imported (SIGINT, SIGTERM or SIGHUP) ends it with one line and status 130, not a traceback or a
silent death by the signal (143, 129); a program importing downslope keeps its own handlers, and a signal
ignored on purpose (``nohup``) stays ignored."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from downslope import runs, startup_signals


def _csv(path, rows):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3))
    np.savetxt(path, np.c_[x, x @ [1.0, 2.0, 3.0]], delimiter=",", header="a,b,c,y", comments="")


@pytest.mark.slow
def test_sighup_keeps_the_run_and_exits_with_the_interrupted_status(tmp_path):
    _csv(tmp_path / "d.csv", 2000)
    cmd = [sys.executable, "-m", "downslope", "train", "--data", "d.csv", "--target", "y", "--hidden", "64",
           "--epochs", "1000", "--patience", "0", "--out", "runs/r"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staging = tmp_path / "runs" / ".r.partial"
    deadline = time.monotonic() + 60
    while not (staging / "checkpoint.ckpt").is_file():  # the first epoch is saved
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == runs.EXIT_INTERRUPTED, out + err
    assert "SIGHUP received: finishing epoch" in err, err
    assert "interrupted by SIGHUP" in err and "--resume runs/r" in err and "Traceback" not in err, err
    assert runs.read_status(staging)["status"] == runs.INTERRUPTED


# The command as its console script runs it, with a signal sent to itself as the module ``hooked`` is imported:
# deterministically inside the start-up imports (numpy: in ``import downslope``; cli.train: in the CLI's own).
_STARTING = """
import os, signal, sys
sys.argv = ["downslope", "--version"]
hooked, sig = {hooked!r}, signal.{sig}
class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        if name == hooked:
            os.kill(os.getpid(), sig)
        return None
sys.meta_path.insert(0, SignalOnImport())
from downslope.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
@pytest.mark.parametrize("hooked", ["numpy", "downslope.cli.train"])
def test_a_signal_during_start_up_exits_130_with_one_line(sig, hooked):
    code = _STARTING.format(hooked=hooked, sig=sig)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr, done.stdout) == (130, "downslope: interrupted\n", ""), done


def test_a_signal_ignored_with_nohup_stays_ignored_during_start_up():
    code = _STARTING.format(hooked="downslope.cli.train", sig="SIGHUP")

    def ignore_hangups() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, preexec_fn=ignore_hangups
    )
    assert done.returncode == 0 and done.stdout.startswith("downslope "), done


def test_a_program_importing_downslope_keeps_its_signal_handlers():
    code = (
        "import signal, downslope\n"
        "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, signal.getsignal(signal.SIGHUP) is signal.SIG_DFL,"
        " signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", "True", "True"], done


def test_other_commands_get_the_default_handlers_back_once_started():
    code = (
        "import signal, sys\n"
        "sys.argv = ['downslope', 'runs', '--help']\n"
        "from downslope import cli\n"
        "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)\n"
        "cli.COMMANDS['runs'] = lambda args: print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL) or 0\n"
        "sys.argv = ['downslope', 'runs']\n"
        "sys.exit(cli.main())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["False", "True"], done


@pytest.mark.parametrize(
    ("orig_argv", "argv", "expected"),
    [
        (["python", "-m", "downslope", "train"], ["-m", "train"], True),
        (["python", "-X", "importtime", "-m", "downslope"], ["-m"], True),
        (["/usr/bin/python3", "/usr/local/bin/downslope", "train"], ["/usr/local/bin/downslope", "train"], True),
        (["python", "-m", "pytest", "-m", "downslope"], ["-m", "-m", "downslope"], False),
        (["python", "-c", "import downslope", "-m", "downslope"], ["-c", "-m", "downslope"], False),
        (["python", "script.py", "-m", "downslope"], ["script.py", "-m", "downslope"], False),
        (["python", "-m", "downslope.cli"], ["-m"], False),
    ],
)
def test_is_command_tells_the_downslope_command_from_other_programs(orig_argv, argv, expected):
    assert startup_signals.is_command(orig_argv, argv) is expected


def test_fit_returns_after_sighup_with_the_history_saying_it_was_interrupted():
    program = (
        "import json, os, signal, numpy as np\n"
        "from downslope import nn\n"
        "from downslope.train import Callback, fit\n"
        "class Hangup(Callback):\n"
        "    def on_train_batch_end(self, batch, logs=None):\n"
        "        if self.trainer.epoch == 1 and batch == 0: os.kill(os.getpid(), signal.SIGHUP)\n"
        "x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32); y = x[:, :1]\n"
        "h = fit(nn.Linear(2, 1), 'mse', 'sgd', (x, y), epochs=50, callbacks=[Hangup()], verbose=0)\n"
        "print(json.dumps({'epochs': len(h), 'kind': h.stop_kind, 'reason': h.stop_reason}))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    assert said == {"epochs": 2, "kind": "interrupted",
                    "reason": "interrupted by SIGHUP: finished epoch 2 and stopped"}, said  # fmt: skip
