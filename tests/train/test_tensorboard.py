import numpy as np
import pytest

from downslope import nn, optim
from downslope.train import fit
from downslope.train.tensorboard import TensorBoard, crc32c


def test_crc32c_matches_published_check_values():
    # RFC 3720 (iSCSI) appendix B.4 test vectors and the standard "123456789" check value.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


def test_event_files_are_read_back_by_tensorboard(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    x, y = np.random.default_rng(0).normal(size=(20, 2)), np.zeros((20, 1))
    model = nn.Linear(2, 1)
    history = fit(
        model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), (x, y), (x, y),
        epochs=3, callbacks=[TensorBoard(tmp_path)],
    )  # fmt: skip
    reader = accumulator.EventAccumulator(str(tmp_path))
    reader.Reload()
    assert {"loss", "val_loss", "lr"} <= set(reader.Tags()["scalars"])
    events = reader.Scalars("val_loss")
    assert [e.step for e in events] == [1, 2, 3]
    np.testing.assert_allclose([e.value for e in events], history["val_loss"], rtol=1e-6)
