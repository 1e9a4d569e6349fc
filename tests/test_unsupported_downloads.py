"""``torch.hub`` (load_state_dict_from_url, load) and ``torch.utils.model_zoo`` (load_url), how ported code
fetches pretrained weights, say that downslope downloads nothing and what to do instead, through every
spelling: attribute access, ``import`` and ``from ... import``."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import downslope as ds
from downslope._unsupported import NETWORK, UnsupportedModuleError, UnsupportedNameError, reason

_EXPECTED = ("not supported", "no network", "download the file", "downslope.load", "load_state_dict")


def _says_why(text: str) -> None:
    for part in _EXPECTED:
        assert part in text, (part, text)


def test_attribute_access_says_why() -> None:
    for owner, name in ((ds, "hub"), (ds.utils, "model_zoo")):
        with pytest.raises(UnsupportedNameError) as caught:
            getattr(owner, name)
        _says_why(str(caught.value))
        assert isinstance(caught.value, AttributeError) and not hasattr(owner, name)


@pytest.mark.parametrize(
    "statement",
    [
        "import downslope.hub",
        "from downslope.hub import load_state_dict_from_url",
        "from downslope.hub import load",
        "from downslope.utils.model_zoo import load_url",
        "import downslope.utils.model_zoo",
    ],
)
def test_import_statements_say_why(statement: str) -> None:
    with pytest.raises(UnsupportedModuleError) as caught:
        exec(statement, {})
    _says_why(str(caught.value))
    assert isinstance(caught.value, ImportError)  # `except ImportError:` fallbacks keep working


def test_other_missing_names_are_plain_errors_and_the_reasons_reach_the_table() -> None:
    with pytest.raises(AttributeError, match="module 'downslope.utils' has no attribute 'no_such_name'") as caught:
        ds.utils.no_such_name  # noqa: B018
    assert not isinstance(caught.value, UnsupportedNameError)
    with pytest.raises(ModuleNotFoundError) as missing:
        importlib.import_module("downslope.utils.no_such_module")
    assert not isinstance(missing.value, UnsupportedModuleError)
    assert reason("torch", "hub") == reason("torch.utils", "model_zoo") == NETWORK


def test_a_fresh_interpreter_says_why_too() -> None:
    code = "from downslope.utils.model_zoo import load_url\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "UnsupportedModuleError" in done.stderr and "downslope.load" in done.stderr
