"""``torch.utils.tensorboard``: :class:`SummaryWriter` logs scalars, histograms, text and
hyperparameters as TensorBoard event files (``tensorboard --logdir runs``).

It writes through the ``tensorboard`` package's own protocol buffers and event-file writer, as
PyTorch's does, so every plugin reads what it writes; the package is imported when the first writer is
made, not with this module. (The dependency-free :class:`downslope.train.TensorBoard` callback, which
writes per-epoch scalars only, needs no package at all.)

Example:
    >>> import tempfile
    >>> from downslope.utils.tensorboard import SummaryWriter
    >>> with SummaryWriter(tempfile.mkdtemp()) as writer:
    ...     writer.add_scalar("loss", 0.25, global_step=1)
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from datetime import datetime
from typing import Any

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError
from ..tensor import Tensor

__all__ = ["SummaryWriter"]

_INSTALL = (
    "downslope.utils.tensorboard needs the tensorboard package (the 'tensorboard' extra): "
    "pip install 'downslope[tensorboard]', or pip install tensorboard"
)


def _tb() -> Any:
    """The tensorboard modules the writer uses, imported on first use (they take a quarter second)."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as e:
        raise ImportError(f"{_INSTALL} ({e})") from e
    return event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, EventFileWriter


def _numpy(value: Any, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return np.asarray(value.detach().cpu().numpy())  # host: values written to disk
    try:
        array = np.asarray(value)  # host: values written to disk
    except (TypeError, ValueError):
        array = np.asarray(None)
    if array.dtype.kind not in "biuf":
        raise ArgumentTypeError(f"SummaryWriter.{what}: expected a number, array or Tensor, got {type(value).__name__}")
    return array


_warned_graph = False


def _default_bins() -> list[float]:
    """TensorFlow's histogram bucket limits: +-1e-12 growing by 10% out to 1e20, and 0."""
    v, buckets = 1e-12, []
    while v < 1e20:
        buckets.append(v)
        v *= 1.1
    return [-b for b in reversed(buckets)] + [0.0] + buckets


class _FileWriter:
    """One event file in one directory (``add_scalars`` keeps one per series)."""

    def __init__(self, log_dir: str, max_queue: int, flush_secs: float, filename_suffix: str) -> None:
        event_file_writer = _tb()[4]
        self.log_dir = str(log_dir)
        self.writer = event_file_writer(self.log_dir, max_queue, flush_secs, filename_suffix)

    def add_event(self, event: Any, step: int | None = None, walltime: float | None = None) -> None:
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)
        self.writer.add_event(event)

    def add_summary(self, summary: Any, step: int | None = None, walltime: float | None = None) -> None:
        event_pb2 = _tb()[0]
        self.add_event(event_pb2.Event(summary=summary), step, walltime)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class SummaryWriter:
    """Write TensorBoard event files into ``log_dir`` (default ``runs/<Mon>DD_HH-MM-SS_<host><comment>``),
    PyTorch's ``torch.utils.tensorboard.SummaryWriter``: ``add_scalar``, ``add_scalars``,
    ``add_histogram``, ``add_text``, ``add_hparams``, ``add_image(s)``, ``add_figure``, ``add_embedding``,
    ``add_pr_curve``, ``add_custom_scalars``, ``flush``, ``close``; usable as a context manager.
    ``add_graph`` is accepted and records nothing (there is no tracer; it warns once). Values may be
    Python numbers, NumPy arrays or tensors. Needs the ``tensorboard`` package (images: Pillow too;
    figures: matplotlib).

    Example:
        >>> import tempfile
        >>> import downslope as ds
        >>> writer = SummaryWriter(tempfile.mkdtemp(), comment="ignored with a log_dir")
        >>> writer.add_histogram("weights", ds.randn(100), global_step=0)
        >>> writer.add_text("note", "first run")
        >>> writer.close()
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ) -> None:
        _tb()  # the missing-package error at construction, not at the first add
        if not log_dir:
            current_time = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", current_time + "_" + socket.gethostname() + comment)
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer: _FileWriter | None = None
        self.all_writers: dict[str, _FileWriter] | None = None
        self._get_file_writer()
        self.default_bins = _default_bins()

    def _get_file_writer(self) -> _FileWriter:
        """The writer of ``log_dir``'s own event file, made again after :meth:`close`."""
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = _FileWriter(self.log_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            self.all_writers = {self.file_writer.log_dir: self.file_writer}
            if self.purge_step is not None:
                # the events TensorBoard reads as "drop what a crashed run wrote from this step on"
                event_pb2 = _tb()[0]
                self.file_writer.add_event(event_pb2.Event(step=self.purge_step, file_version="brain.Event:2"))
                start = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
                self.file_writer.add_event(event_pb2.Event(step=self.purge_step, session_log=start))
                self.purge_step = None
        return self.file_writer

    def get_logdir(self) -> str:
        """The directory the event files go to.

        Example:
            >>> import tempfile
            >>> d = tempfile.mkdtemp()
            >>> SummaryWriter(d).get_logdir() == d
            True
        """
        return self.log_dir

    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        new_style: bool = False,
        double_precision: bool = False,
    ) -> None:
        """Log one number under ``tag`` (``new_style`` writes it as a tensor, in float64 with
        ``double_precision``).

        Example:
            >>> import tempfile
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_scalar("loss", 0.5, global_step=3)
        """
        self._get_file_writer().add_summary(
            self._scalar(tag, scalar_value, new_style, double_precision), global_step, walltime
        )

    def _scalar(self, tag: str, value: Any, new_style: bool = False, double_precision: bool = False) -> Any:
        _, summary_pb2, tensor_pb2, _, _ = _tb()
        array = _numpy(value, "add_scalar").squeeze()
        if array.ndim != 0:
            raise ArgumentError(
                f"SummaryWriter.add_scalar: expected one value for {tag!r}, got {array.size} (shape {array.shape})"
            )
        number = float(array)  # host: a value written to disk
        if not new_style:
            return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=number)])
        if double_precision:
            proto = tensor_pb2.TensorProto(double_val=[number], dtype="DT_DOUBLE")
        else:
            proto = tensor_pb2.TensorProto(float_val=[number], dtype="DT_FLOAT")
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, tensor=proto, metadata=metadata)])

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: dict[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Log several numbers on one chart: each series goes to its own run directory,
        ``<log_dir>/<main_tag>_<tag>``, under the tag ``main_tag``.

        Example:
            >>> import tempfile
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_scalars("loss", {"train": 0.5, "val": 0.7}, global_step=1)
        """
        if not isinstance(tag_scalar_dict, dict):
            raise ArgumentTypeError(
                f"SummaryWriter.add_scalars: expected a dict of tag: value, got {type(tag_scalar_dict).__name__}"
            )
        walltime = time.time() if walltime is None else walltime
        fw_logdir = self._get_file_writer().log_dir
        assert self.all_writers is not None
        for tag, value in tag_scalar_dict.items():
            fw_tag = fw_logdir + "/" + main_tag.replace("/", "_") + "_" + tag
            fw = self.all_writers.get(fw_tag)
            if fw is None:
                fw = _FileWriter(fw_tag, self.max_queue, self.flush_secs, self.filename_suffix)
                self.all_writers[fw_tag] = fw
            fw.add_summary(self._scalar(main_tag, value), global_step, walltime)

    def add_histogram(
        self,
        tag: str,
        values: Any,
        global_step: int | None = None,
        bins: Any = "tensorflow",
        walltime: float | None = None,
        max_bins: int | None = None,
    ) -> None:
        """Log the distribution of ``values``: ``bins`` as ``numpy.histogram`` takes it, or
        ``'tensorflow'`` (the default) for TensorFlow's exponential buckets.

        Example:
            >>> import tempfile
            >>> import downslope as ds
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_histogram("w", ds.randn(50), bins="auto")
        """
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        _, summary_pb2, _, _, _ = _tb()
        hist = _histogram(_numpy(values, "add_histogram").astype(float), bins, max_bins, summary_pb2, tag)
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, histo=hist)])
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_text(
        self, tag: str, text_string: str, global_step: int | None = None, walltime: float | None = None
    ) -> None:
        """Log a (Markdown) string, shown in TensorBoard's Text tab under ``<tag>/text_summary``.

        Example:
            >>> import tempfile
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_text("notes", "lr **0.1**", global_step=0)
        """
        if not isinstance(text_string, str):
            raise ArgumentTypeError(f"SummaryWriter.add_text: expected a str, got {type(text_string).__name__}")
        _, summary_pb2, tensor_pb2, tensor_shape_pb2, _ = _tb()
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

        plugin = summary_pb2.SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()
        )
        proto = tensor_pb2.TensorProto(
            dtype="DT_STRING",
            string_val=[text_string.encode("utf_8")],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]),
        )
        value = summary_pb2.Summary.Value(
            tag=tag + "/text_summary", metadata=summary_pb2.SummaryMetadata(plugin_data=plugin), tensor=proto
        )
        self._get_file_writer().add_summary(summary_pb2.Summary(value=[value]), global_step, walltime)

    def add_hparams(
        self,
        hparam_dict: dict[str, Any],
        metric_dict: dict[str, Any],
        hparam_domain_discrete: dict[str, list[Any]] | None = None,
        run_name: str | None = None,
        global_step: int | None = None,
    ) -> None:
        """Log one trial's hyperparameters and final metrics for TensorBoard's HParams tab, in a
        run directory ``<log_dir>/<run_name>`` (default: the current time).

        Example:
            >>> import tempfile
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_hparams({"lr": 0.1, "optimizer": "sgd"}, {"hparam/accuracy": 0.9})
        """
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise ArgumentTypeError(
                "SummaryWriter.add_hparams: expected hparam_dict and metric_dict to be dicts, got "
                f"{type(hparam_dict).__name__} and {type(metric_dict).__name__}"
            )
        summaries = _hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        if not run_name:
            run_name = str(time.time())
        logdir = os.path.join(self._get_file_writer().log_dir, run_name)
        with SummaryWriter(log_dir=logdir) as w_hp:
            fw = w_hp._get_file_writer()
            for summary in summaries:
                fw.add_summary(summary, global_step)
            for k, v in metric_dict.items():
                w_hp.add_scalar(k, v, global_step)

    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "CHW",
    ) -> None:
        """Log one image: ``img_tensor`` laid out as ``dataformats`` says (``"CHW"``, ``"HWC"``, ``"HW"``),
        floating values in [0, 1] (scaled by 255) or uint8 values in [0, 255], written as a PNG (needs
        Pillow, as PyTorch's writer does).

        Example:
            >>> import tempfile
            >>> import numpy as np
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_image("img", np.ones((3, 4, 4)), 0)
            ...     w.add_image("hwc", np.zeros((4, 4, 3), np.uint8), 0, dataformats="HWC")
        """
        self._get_file_writer().add_summary(
            _image_summary(tag, _numpy(img_tensor, "add_image"), dataformats), global_step, walltime
        )

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """Log a batch of images (``"NCHW"`` or ``"NHWC"``) as one grid image, 8 to a row, as PyTorch.

        Example:
            >>> import tempfile
            >>> import numpy as np
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_images("batch", np.zeros((5, 1, 4, 4)), 0)
        """
        self._get_file_writer().add_summary(
            _image_summary(tag, _numpy(img_tensor, "add_images"), dataformats), global_step, walltime
        )

    def add_figure(
        self,
        tag: str,
        figure: Any,
        global_step: int | None = None,
        close: bool = True,
        walltime: float | None = None,
    ) -> None:
        """Log a matplotlib figure (or a list of them, as one grid) as an image; ``close`` closes it.

        Example:
            >>> import tempfile
            >>> import matplotlib
            >>> matplotlib.use("Agg")
            >>> import matplotlib.pyplot as plt
            >>> fig = plt.figure(figsize=(1, 1))
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_figure("fig", fig, 0)
        """
        if isinstance(figure, list):
            self.add_image(tag, _figure_to_image(figure, close), global_step, walltime, dataformats="NCHW")
        else:
            self.add_image(tag, _figure_to_image(figure, close), global_step, walltime, dataformats="CHW")

    def add_embedding(
        self,
        mat: Any,
        metadata: list[Any] | None = None,
        label_img: Any = None,
        global_step: int | None = None,
        tag: str = "default",
        metadata_header: list[str] | None = None,
    ) -> None:
        """Log points for TensorBoard's Projector: ``mat`` (N, D), with per-point ``metadata`` labels (one
        column, or rows under ``metadata_header``) and ``label_img`` (N, C, H, W) thumbnails, written as
        PyTorch's writer writes them (``<log_dir>/<step>/<tag>/tensors.tsv`` ..., ``projector_config.pbtxt``).

        Example:
            >>> import tempfile
            >>> import numpy as np
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_embedding(np.eye(3), metadata=["a", "b", "c"])
        """
        from google.protobuf import text_format
        from tensorboard.plugins.projector.projector_config_pb2 import EmbeddingInfo, ProjectorConfig

        matrix = _numpy(mat, "add_embedding")
        images = None if label_img is None else _numpy(label_img, "add_embedding")
        if global_step is None:
            global_step = 0
        subdir = f"{str(global_step).zfill(5)}/{_encode(tag)}"
        log_dir = self._get_file_writer().log_dir
        save_path = os.path.join(log_dir, subdir)
        if os.path.exists(save_path):
            if not os.path.isdir(save_path):
                raise NotADirectoryError(f"Path: `{save_path}` exists, but is a file. Cannot proceed.")
            print("warning: Embedding dir exists, did you set global_step for add_embedding()?")
        else:
            os.makedirs(save_path)
        if metadata is not None:
            if matrix.shape[0] != len(metadata):
                raise ArgumentError(
                    f"SummaryWriter.add_embedding: {len(metadata)} metadata labels for {matrix.shape[0]} points"
                )
            _write_tsv(metadata, save_path, metadata_header)
        if images is not None:
            if images.ndim != 4 or matrix.shape[0] != images.shape[0]:
                raise ArgumentError(
                    f"SummaryWriter.add_embedding: label_img must be (N, C, H, W) with N = {matrix.shape[0]} points, "
                    f"got shape {images.shape}"
                )
            _write_sprite(images, save_path)
        if matrix.ndim != 2:
            raise ArgumentError(
                f"SummaryWriter.add_embedding: mat must be 2-D (points, features), got shape {matrix.shape}"
            )
        with open(os.path.join(save_path, "tensors.tsv"), "wb") as f:
            for row in matrix:
                f.write(("\t".join(str(x.item()) for x in row) + "\n").encode())
        info = EmbeddingInfo(tensor_name=f"{tag}:{str(global_step).zfill(5)}", tensor_path=f"{subdir}/tensors.tsv")
        if metadata is not None:
            info.metadata_path = f"{subdir}/metadata.tsv"
        if images is not None:
            info.sprite.image_path = f"{subdir}/sprite.png"
            info.sprite.single_image_dim.extend([images.shape[3], images.shape[2]])
        if self._projector_config is None:
            self._projector_config = ProjectorConfig()
        self._projector_config.embeddings.extend([info])
        with open(os.path.join(log_dir, "projector_config.pbtxt"), "wb") as f:
            f.write(text_format.MessageToString(self._projector_config).encode())

    _projector_config: Any = None  # the Projector's config, rewritten whole by each add_embedding

    def add_pr_curve(
        self,
        tag: str,
        labels: Any,
        predictions: Any,
        global_step: int | None = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        """Log a precision-recall curve of ``predictions`` (probabilities in [0, 1]) against binary
        ``labels``, at ``num_thresholds`` thresholds (at most 127, as PyTorch).

        Example:
            >>> import tempfile
            >>> import numpy as np
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_pr_curve("pr", np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9]), 0)
        """
        summary = _pr_curve(
            tag, _numpy(labels, "add_pr_curve"), _numpy(predictions, "add_pr_curve"), num_thresholds, weights
        )
        self._get_file_writer().add_summary(summary, global_step, walltime)

    def add_custom_scalars(self, layout: dict[str, dict[str, list[Any]]]) -> None:
        """Lay out TensorBoard's Custom Scalars tab: ``{category: {chart: ["Multiline", [tags]] or
        ["Margin", [value, lower, upper]]}}``.

        Example:
            >>> import tempfile
            >>> with SummaryWriter(tempfile.mkdtemp()) as w:
            ...     w.add_custom_scalars({"loss": {"both": ["Multiline", ["loss/train", "loss/val"]]}})
        """
        self._get_file_writer().add_summary(_custom_scalars(layout))

    def add_graph(
        self, model: Any, input_to_model: Any = None, verbose: bool = False, use_strict_trace: bool = True
    ) -> None:
        """Accepted, and writes nothing: PyTorch records the graph with its TorchScript tracer, which
        downslope does not have. Warns once per process, so that nobody looks for a Graphs tab.

        Example:
            >>> import tempfile, warnings
            >>> import downslope as ds
            >>> with warnings.catch_warnings():
            ...     warnings.simplefilter("ignore")
            ...     with SummaryWriter(tempfile.mkdtemp()) as w:
            ...         w.add_graph(ds.nn.Linear(2, 1), ds.ones(1, 2))
        """
        global _warned_graph
        if not _warned_graph:
            _warned_graph = True
            warnings.warn(
                "SummaryWriter.add_graph: downslope has no graph tracer, so the model's graph is not recorded "
                "(TensorBoard shows no Graphs tab for this run)",
                UserWarning,
                stacklevel=2,
            )

    def flush(self) -> None:
        """Write pending events to disk.

        Example:
            >>> import tempfile
            >>> SummaryWriter(tempfile.mkdtemp()).flush()
        """
        for writer in (self.all_writers or {}).values():
            writer.flush()

    def close(self) -> None:
        """Flush and close every event file (a later ``add_*`` opens a new one; closing twice is fine).

        Example:
            >>> import tempfile
            >>> w = SummaryWriter(tempfile.mkdtemp())
            >>> w.close(); w.close()
        """
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _histogram(values: np.ndarray, bins: Any, max_bins: int | None, summary_pb2: Any, tag: str) -> Any:
    """A HistogramProto as TensorBoard's histogram.cc builds it: only the bins from the first to the
    last non-empty one, each bin named by its right edge, with an empty bin in front for the left edge."""
    if values.size == 0:
        raise ArgumentError(f"SummaryWriter.add_histogram: {tag!r} has no values")
    values = values.reshape(-1)
    if not np.isfinite(values).all():
        raise ArgumentError(f"SummaryWriter.add_histogram: {tag!r} has NaN or infinite values")
    counts, limits = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        subsampling = len(counts) // max_bins
        remainder = len(counts) % subsampling
        if remainder:
            counts = np.pad(counts, [[0, subsampling - remainder]])
        counts = counts.reshape(-1, subsampling).sum(axis=-1)
        new_limits = np.empty((counts.size + 1,), limits.dtype)
        new_limits[:-1] = limits[:-1:subsampling]
        new_limits[-1] = limits[-1]
        limits = new_limits
    cum_counts = np.cumsum(np.greater(counts, 0))
    start, end = (int(i) for i in np.searchsorted(cum_counts, [0, cum_counts[-1] - 1], side="right"))
    end += 1
    counts = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start : end + 1]
    return summary_pb2.HistogramProto(
        min=values.min(),
        max=values.max(),
        num=len(values),
        sum=values.sum(),
        sum_squares=values.dot(values),
        bucket_limit=limits.tolist(),
        bucket=counts.tolist(),
    )


def _hparams(
    hparam_dict: dict[str, Any], metric_dict: dict[str, Any], domains: dict[str, list[Any]] | None
) -> list[Any]:
    """The experiment, session-start and session-end summaries of the HParams plugin."""
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    _, summary_pb2, _, _, _ = _tb()
    domains = domains or {}
    if not isinstance(domains, dict):
        raise ArgumentTypeError("SummaryWriter.add_hparams: hparam_domain_discrete must be a dict")
    for k, domain_values in domains.items():
        if (
            k not in hparam_dict
            or not isinstance(domain_values, list)
            or not all(isinstance(d, type(hparam_dict[k])) for d in domain_values)
        ):
            raise ArgumentTypeError(
                f"SummaryWriter.add_hparams: hparam_domain_discrete[{k!r}] must be a list of the type of hparam_dict[{k!r}]"
            )
    infos: list[Any] = []
    ssi = plugin_data_pb2.SessionStartInfo()
    for k, given in hparam_dict.items():
        v: Any = given
        if v is None:
            continue
        if isinstance(v, Tensor):
            v = float(_numpy(v, "add_hparams").reshape(-1)[0])  # host: a value written to disk
        if isinstance(v, (int, float)):  # a bool too, as a number, as torch's writer files it
            ssi.hparams[k].number_value = v
            kind, field = "DATA_TYPE_FLOAT64", "number_value"
        elif isinstance(v, str):
            ssi.hparams[k].string_value = v
            kind, field = "DATA_TYPE_STRING", "string_value"
        else:  # a ValueError, as torch's
            raise ArgumentError(
                f"SummaryWriter.add_hparams: hparam {k!r} must be an int, float, str, bool or Tensor, got {type(v).__name__}"
            )
        domain = None
        if k in domains:
            domain = struct_pb2.ListValue(values=[struct_pb2.Value(**{field: d}) for d in domains[k]])
        infos.append(api_pb2.HParamInfo(name=k, type=api_pb2.DataType.Value(kind), domain_discrete=domain))

    def summary(tag: str, content: Any) -> Any:
        plugin = summary_pb2.SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString()
        )
        value = summary_pb2.Summary.Value(tag=tag, metadata=summary_pb2.SummaryMetadata(plugin_data=plugin))
        return summary_pb2.Summary(value=[value])

    version = metadata.PLUGIN_DATA_VERSION
    experiment = api_pb2.Experiment(
        hparam_infos=infos, metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metric_dict]
    )
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))
    return [
        summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment, version=version)),
        summary(
            metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=ssi, version=version)
        ),
        summary(
            metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end, version=version)
        ),
    ]


def _encode(raw: str) -> str:
    """A tag as one directory name, as PyTorch's writer escapes it ('%', '/' and '\\' as %xx)."""
    return raw.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")


def _to_hwc(array: np.ndarray, dataformats: str) -> np.ndarray:
    """An image in ``dataformats`` (N?C?HW in any order) as (H, W, 3): a batch tiled into a grid, gray
    repeated into three channels, as PyTorch's ``convert_to_HWC``."""
    fmt = dataformats.upper()
    if len(set(fmt)) != len(fmt) or not set(fmt) <= set("NCHW") or len(fmt) not in (2, 3, 4):
        raise ArgumentError(f"SummaryWriter: dataformats must be letters of NCHW used once each, got {dataformats!r}")
    if array.ndim != len(fmt):
        raise ArgumentError(
            f"SummaryWriter: an image of shape {array.shape} does not match dataformats {dataformats!r}"
        )
    if len(fmt) == 4:
        return _make_grid(array.transpose([fmt.find(c) for c in "NCHW"])).transpose(1, 2, 0)
    if len(fmt) == 3:
        hwc = array.transpose([fmt.find(c) for c in "HWC"])
        return np.concatenate([hwc, hwc, hwc], 2) if hwc.shape[2] == 1 else hwc
    hw = array.transpose([fmt.find(c) for c in "HW"])
    return np.stack([hw, hw, hw], 2)


def _make_grid(images: np.ndarray, ncols: int = 8) -> np.ndarray:
    """(N, 1 or 3, H, W) images tiled ``ncols`` to a row into one (3, H * rows, W * cols) image."""
    if images.shape[1] == 1:
        images = np.concatenate([images, images, images], 1)
    if images.shape[1] != 3:
        raise ArgumentError(f"SummaryWriter: images must have 1 or 3 channels, got shape {images.shape}")
    n, _, h, w = images.shape
    ncols = min(n, ncols)
    nrows = math.ceil(n / ncols)
    canvas = np.zeros((3, h * nrows, w * ncols), dtype=images.dtype)
    for i in range(n):
        y, x = divmod(i, ncols)
        canvas[:, y * h : (y + 1) * h, x * w : (x + 1) * w] = images[i]
    return canvas


def _image_summary(tag: str, array: np.ndarray, dataformats: str) -> Any:
    """PyTorch's ``summary.image``: floats times 255 (uint8 as they are), clipped, encoded as a PNG."""
    import io

    from PIL import Image

    _, summary_pb2, _, _, _ = _tb()
    hwc = _to_hwc(array, dataformats)
    scale = 1 if hwc.dtype == np.uint8 else 255
    pixels = (hwc.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    height, width, channels = pixels.shape
    with io.BytesIO() as out:
        Image.fromarray(pixels).save(out, format="PNG")
        encoded = out.getvalue()
    image = summary_pb2.Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=encoded)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)])


def _figure_to_image(figures: Any, close: bool) -> np.ndarray:
    """A matplotlib figure rendered to a (3, H, W) uint8 image (a list of them: (N, 3, H, W))."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def render(figure: Any) -> np.ndarray:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        data = np.frombuffer(canvas.buffer_rgba(), dtype=np.uint8)
        w, h = figure.canvas.get_width_height()
        image = np.moveaxis(data.reshape([h, w, 4])[:, :, :3], 2, 0)
        if close:
            plt.close(figure)
        return image

    if isinstance(figures, list):
        return np.stack([render(f) for f in figures])
    return render(figures)


def _write_tsv(metadata: list[Any], save_path: str, header: list[str] | None) -> None:
    if not header:
        lines = [str(x) for x in metadata]
    else:
        if len(header) != len(metadata[0]):
            raise ArgumentError(
                f"SummaryWriter.add_embedding: metadata_header has {len(header)} columns, "
                f"the metadata {len(metadata[0])}"
            )
        lines = ["\t".join(str(e) for e in row) for row in [header, *metadata]]
    with open(os.path.join(save_path, "metadata.tsv"), "wb") as f:
        f.write(("\n".join(lines) + "\n").encode())


def _write_sprite(images: np.ndarray, save_path: str) -> None:
    """The Projector's sprite: the thumbnails tiled in a square (values in [0, 1]), as PyTorch's."""
    import io

    from PIL import Image

    grid = _make_grid(images, ncols=math.ceil(images.shape[0] ** 0.5))
    square = np.zeros((grid.shape[2], grid.shape[2], 3))
    hwc = grid.transpose(1, 2, 0)
    square[: hwc.shape[0], :, :] = hwc
    with io.BytesIO() as buf:
        Image.fromarray(np.uint8((square * 255).clip(0, 255))).save(buf, format="PNG")
        data = buf.getvalue()
    with open(os.path.join(save_path, "sprite.png"), "wb") as f:
        f.write(data)


def _pr_curve(tag: str, labels: np.ndarray, predictions: np.ndarray, num_thresholds: int, weights: Any) -> Any:
    """PyTorch's ``summary.pr_curve``: the (6, thresholds) table TP, FP, TN, FN, precision, recall."""
    from tensorboard.plugins.pr_curve.plugin_data_pb2 import PrCurvePluginData

    _, summary_pb2, tensor_pb2, tensor_shape_pb2, _ = _tb()
    num_thresholds = min(num_thresholds, 127)  # PyTorch's limit
    w = 1.0 if weights is None else _numpy(weights, "add_pr_curve")
    buckets = np.int32(np.floor(predictions * (num_thresholds - 1)))
    labels64 = labels.astype(np.float64)
    span = (0, num_thresholds - 1)
    tp_buckets, _ = np.histogram(buckets, bins=num_thresholds, range=span, weights=labels64 * w)
    fp_buckets, _ = np.histogram(buckets, bins=num_thresholds, range=span, weights=(1.0 - labels64) * w)
    tp = np.cumsum(tp_buckets[::-1])[::-1]
    fp = np.cumsum(fp_buckets[::-1])[::-1]
    tn, fn = fp[0] - fp, tp[0] - tp
    precision = tp / np.maximum(1e-7, tp + fp)
    recall = tp / np.maximum(1e-7, tp + fn)
    data = np.stack((tp, fp, tn, fn, precision, recall))
    content = PrCurvePluginData(version=0, num_thresholds=num_thresholds).SerializeToString()
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="pr_curves", content=content)
    )
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in data.shape]
    proto = tensor_pb2.TensorProto(
        dtype="DT_FLOAT", float_val=data.reshape(-1).tolist(), tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims)
    )
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=proto)])


def _custom_scalars(layout: dict[str, dict[str, list[Any]]]) -> Any:
    """PyTorch's ``summary.custom_scalars``: the Custom Scalars plugin's layout."""
    from tensorboard.plugins.custom_scalar import layout_pb2

    _, summary_pb2, tensor_pb2, tensor_shape_pb2, _ = _tb()
    if not isinstance(layout, dict):
        raise ArgumentTypeError(f"SummaryWriter.add_custom_scalars: expected a dict, got {type(layout).__name__}")
    categories = []
    for category, charts_of in layout.items():
        charts = []
        for title, (kind, tags) in charts_of.items():
            if kind == "Margin":
                if len(tags) != 3:
                    raise ArgumentError(
                        f"SummaryWriter.add_custom_scalars: a Margin chart takes [value, lower, upper] tags, got {tags}"
                    )
                series = layout_pb2.MarginChartContent.Series(value=tags[0], lower=tags[1], upper=tags[2])
                charts.append(layout_pb2.Chart(title=title, margin=layout_pb2.MarginChartContent(series=[series])))
            else:
                charts.append(layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=tags)))
        categories.append(layout_pb2.Category(title=category, chart=charts))
    proto = tensor_pb2.TensorProto(
        dtype="DT_STRING",
        string_val=[layout_pb2.Layout(category=categories).SerializeToString()],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(),
    )
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="custom_scalars")
    )
    return summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag="custom_scalars__config__", tensor=proto, metadata=metadata)]
    )
