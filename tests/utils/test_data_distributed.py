"""``torch.utils.data.DistributedSampler`` and ``torch.utils.data.distributed.DistributedSampler``, the import
lines of nearly every DDP/SSL script, give downslope.distributed's sampler with torch's indices, and
importing ``downslope.utils.data`` imports neither downslope.distributed nor mpi4py."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch.utils.data
import torch.utils.data.distributed

import downslope.distributed
import downslope.utils.data


def test_import_lines_of_ported_scripts_work_and_stay_light_in_a_fresh_interpreter() -> None:
    code = (
        "import sys\n"
        "import downslope.utils.data\n"
        "assert 'downslope.distributed' not in sys.modules, 'utils.data must load distributed lazily'\n"
        "from downslope.utils.data import DistributedSampler\n"
        "from downslope.utils.data.distributed import DistributedSampler as D2\n"
        "import downslope.utils.data.distributed\n"
        "import downslope.distributed\n"
        "assert DistributedSampler is D2 is downslope.distributed.DistributedSampler\n"
        "assert downslope.utils.data.distributed.DistributedSampler is D2\n"
        "assert 'mpi4py' not in sys.modules, 'the sampler must not import mpi4py'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("size", [1, 7, 10, 12])
@pytest.mark.parametrize("replicas", [1, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_indices_are_torch_indices(size: int, replicas: int, drop_last: bool) -> None:
    if drop_last and size < replicas:
        pytest.skip("downslope refuses a sampler that leaves every rank empty (torch gives empty ranks)")
    for rank in range(replicas):
        options = {"num_replicas": replicas, "rank": rank, "shuffle": False, "drop_last": drop_last}
        theirs = torch.utils.data.distributed.DistributedSampler(range(size), **options)
        mine = downslope.utils.data.distributed.DistributedSampler(range(size), **options)
        assert list(mine) == list(theirs) and len(mine) == len(theirs)
        assert list(downslope.utils.data.DistributedSampler(range(size), **options)) == list(
            torch.utils.data.DistributedSampler(range(size), **options)
        )


def test_a_missing_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchSampler'"):
        downslope.utils.data.NoSuchSampler  # noqa: B018
    assert downslope.distributed.DistributedSampler is downslope.utils.data.DistributedSampler
