"""Export a run of the ``downslope`` command (``RUN/model.ds``) as ONNX and/or safetensors.

The ONNX graph is the whole prediction path, so a deployment needs nothing but ONNX Runtime:

* inputs: for a CSV run, one input per feature column, named after the column: ``float32 (N, 1)``
  for a numeric column, ``string (N, 1)`` for a text column (one-hot encoded in the graph with
  ``ai.onnx.ml.OneHotEncoder``; a category not seen in training is an error, as in ``predict``);
  ``double (N, 1)`` for a numeric column whose values are large beside their spread (unix seconds:
  float32 would round them to steps of 128), shifted by the training offset before the float32 cast.
  Other runs (built-in datasets, NPZ/NPY files) take one ``float32 (N, n_features)`` input named
  ``features`` (for image data: the flattened pixels, as in training).
* the filling of missing values (NaN) of a run trained with ``--missing mean|median|most_frequent``
  (the training split's values, as ``predict`` fills them; a missing text value, ``""`` or ``NA``...,
  becomes the most frequent category), the feature standardization of training
  (``(x - mean) / scale``), then the model;
* outputs, in the data's own units: ``label`` (the class name as a string: integer classes are named
  by their values, ``'0'``, ``'1'``...; only a model file saved without class names gives int64 indices)
  and ``probabilities`` (N, classes) for classification; ``prediction`` (N, outputs) for
  regression, with the target scaling of training undone (``y * scale + mean``, in float64, so the
  output is float64 then) when the run scaled its target.

The weights file (``--safetensors``) holds the model's state_dict under PyTorch's key names, with
the run's config as JSON in the file's metadata.

Example:
    >>> from downslope.cli.export import export_run
    >>> export_run("runs/digits-adam", onnx_path="digits.onnx")  # doctest: +SKIP
    ['wrote runs/digits-adam as ONNX to digits.onnx (inputs: features; outputs: label, probabilities)']
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..export import onnx as ox
from ..nn.module import Module
from ..tensor import Tensor

__all__ = ["export_run", "run_to_onnx"]


def _encoder(state: dict[str, Any]) -> dict[str, Any] | None:
    enc = (state.get("preprocess") or {}).get("encoder")
    return enc if enc else None


def _standardizer(state: dict[str, Any], key: str, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray] | None:
    found = (state.get("preprocess") or {}).get(key)
    if not found:
        return None
    return np.asarray(found["mean"], dtype), np.asarray(found["scale"], dtype)


def run_to_onnx(model: Module, state: dict[str, Any], opset: int = ox.MIN_OPSET) -> Any:
    """The ONNX ModelProto of a loaded run (``model, state = runs.load_run(RUN)``); see the module docstring.

    Example:
        >>> proto = run_to_onnx(*load_run("runs/digits-adam"))  # doctest: +SKIP
    """
    onnx = ox.require_onnx()
    h = onnx.helper
    g = ox.GraphBuilder(opset, dynamic_batch=True)
    n_features = int(state["n_features"])
    inputs: list[Any] = []
    encoder = _encoder(state)
    classify = state["task"] == "classification"
    for name in ["label", "probabilities"] if classify else ["prediction"]:
        g.reserve(name)
    imputer = (state.get("preprocess") or {}).get("imputer")
    if encoder is not None:
        parts = []
        offsets = encoder.get("offsets") or {}
        for col in encoder["columns"]:
            g.reserve(col)  # a feature column named like an output is refused here, by name
            cats = encoder["categories"].get(col)
            if cats is None and col in offsets:
                # large values beside their spread (unix seconds): float64 in, less the training offset, then
                # float32, as predict encodes them (a float32 input would round 1.7e9 to steps of 128)
                inputs.append(h.make_tensor_value_info(col, onnx.TensorProto.DOUBLE, ["batch", 1]))
                shifted = g.node("Sub", [col, g.const(np.asarray(float(offsets[col])), "feature_offset")])
                parts.append(g.node("Cast", [shifted], "shifted", to=onnx.TensorProto.FLOAT))
            elif cats is None:
                inputs.append(h.make_tensor_value_info(col, onnx.TensorProto.FLOAT, ["batch", 1]))
                parts.append(col)
            else:
                inputs.append(h.make_tensor_value_info(col, onnx.TensorProto.STRING, ["batch", 1]))
                text, missing = col, None
                if imputer:
                    text, missing = _missing_categories(g, col, list(cats), state["config"].get("na_values"))
                # zeros=0: a category unseen in training is an error, as in `downslope predict`.
                hot = g.node("OneHotEncoder", [text], "onehot", domain="ai.onnx.ml", cats_strings=list(cats), zeros=0)
                hot = g.node("Reshape", [hot, g.ints([0, -1])], "onehot")
                hot = g.node("Cast", [hot], "onehot", to=onnx.TensorProto.FLOAT)
                if missing is not None:  # NaN in the whole block: the imputer below fills the most frequent category
                    hot = g.node("Where", [missing, g.const(np.asarray(np.nan, np.float32), "nan"), hot], "onehot")
                parts.append(hot)
        x = parts[0] if len(parts) == 1 else g.node("Concat", parts, "features", axis=1)
    else:
        g.reserve("features")
        inputs.append(h.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["batch", n_features]))
        x = "features"
    if imputer:  # a run trained with --missing mean|median|most_frequent fills NaN inputs as predict does
        fill = np.asarray(imputer["fill"], np.float32).reshape(1, -1)
        x = g.node("Where", [g.node("IsNaN", [x], "missing"), g.const(fill, "fill_values"), x], "filled")
    scaler = _standardizer(state, "standardizer")
    if scaler is not None:
        x = g.node("Sub", [x, g.const(scaler[0], "feature_mean")])
        x = g.node("Div", [x, g.const(scaler[1], "feature_scale")], "standardized")
    example = Tensor(np.zeros((2, n_features), np.float32))
    (out,), _ = ox.trace(g, model, [example], [x])
    n_out = int(state["n_outputs"])
    if classify:
        probs = g.node("Softmax", [out], "probs", axis=1)
        index = g.node("ArgMax", [out], "class_index", axis=1, keepdims=0)
        names = state.get("class_names") or []
        if names:
            label = g.node(
                "Gather", [g.const(np.array(names, dtype=object), "class_names"), index], "label_name", axis=0
            )
            label_type = onnx.TensorProto.STRING
        else:
            label, label_type = index, onnx.TensorProto.INT64
        outputs = [
            (label, "label", h.make_tensor_value_info("label", label_type, ["batch"])),
            (
                probs,
                "probabilities",
                h.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, ["batch", n_out]),
            ),
        ]
    else:
        target = _standardizer(state, "target_scaler", np.float64)
        out_type = onnx.TensorProto.FLOAT
        if target is not None:  # back to the target's own units, in float64 as predict computes them (a
            # target around 1e9 would keep only about 100 of its units in float32)
            out = g.node("Cast", [out], to=onnx.TensorProto.DOUBLE)
            out = g.node(
                "Add", [g.node("Mul", [out, g.const(target[1], "target_scale")]), g.const(target[0], "target_mean")]
            )
            out_type = onnx.TensorProto.DOUBLE
        outputs = [(out, "prediction", h.make_tensor_value_info("prediction", out_type, ["batch", n_out]))]
    proto = ox.finish(g, "downslope_run", inputs, outputs)
    ox.checked(proto, g, "export")
    return proto


def _missing_categories(g: Any, col: str, cats: list[str], na_values: Any = None) -> tuple[str, str]:
    """For a string column ``(N, 1)``: the column with each missing value (empty, NA, nan, ?, ... in any
    case, as ``predict`` reads them; the run's ``na_values`` when it set them) replaced by a known category,
    and the ``(N, 1)`` bool mask of those rows."""
    from ..data.readers import marker_set, null_spellings

    # Every upper/lower-case spelling of the tokens (StringNormalizer would need a system locale at run time).
    tokens = sorted({*null_spellings(marker_set(na_values))[0], " ", "  "})
    flags = g.node(
        "LabelEncoder", [col], "is_missing", domain="ai.onnx.ml",
        keys_strings=tokens, values_int64s=[1] * len(tokens), default_int64=0,
    )  # fmt: skip
    missing = g.node("Cast", [flags], "is_missing", to=9)  # BOOL
    known = g.const(np.array([cats[0]], dtype=object), "known_category")
    return g.node("Where", [missing, known, col], "text_filled"), missing


def reference_outputs(model: Module, state: dict[str, Any], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """What ``downslope predict`` computes for ``feeds`` (the ONNX inputs), as the ONNX outputs.

    Example:
        >>> label, probs = reference_outputs(model, state, {"features": X})  # doctest: +SKIP
    """
    from ..autograd import no_grad
    from ..data.tabular import TabularEncoder
    from ..experiment import apply_preprocess

    encoder = _encoder(state)
    if encoder is not None:
        enc = TabularEncoder.from_state_dict(encoder)
        cols = enc.columns
        n = len(feeds[cols[0]])
        rows = [
            [str(feeds[c][r, 0]) if c in enc.categories else repr(float(feeds[c][r, 0])) for c in cols]
            for r in range(n)
        ]
        from ..data.readers import missing_markers

        with missing_markers(state["config"].get("na_values")):  # the run's missing-value cells, as predict's
            X = enc.encode_features(cols, rows, "ONNX check")
    else:
        X = feeds["features"]
    X = apply_preprocess(np.asarray(X), state["preprocess"])
    with no_grad():
        out = model(Tensor(np.asarray(X, np.float32))).array
    if state["task"] == "classification":
        shifted = np.exp(out - out.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
        index = out.argmax(axis=1)
        names = state.get("class_names") or []
        label = np.array(names, dtype=object)[index] if names else index.astype(np.int64)
        return [label, probs]
    target = _standardizer(state, "target_scaler", np.float64)
    return [out.astype(np.float64) * target[1] + target[0] if target is not None else out]


def sample_feeds(state: dict[str, Any], n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random raw inputs for a run's ONNX graph: numbers around the training data, known categories.

    Example:
        >>> feeds = sample_feeds(state, 5)  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    scaler = _standardizer(state, "standardizer")
    n_features = int(state["n_features"])
    mean, scale = scaler if scaler is not None else (np.zeros(n_features, np.float32), np.ones(n_features, np.float32))
    encoder = _encoder(state)
    fills = bool((state.get("preprocess") or {}).get("imputer"))
    if encoder is None:
        features = (mean + scale * rng.standard_normal((n, n_features))).astype(np.float32)
        if fills:  # one missing value per row, so the check covers the filling
            features[np.arange(n), np.arange(n) % n_features] = np.nan
        return {"features": features}
    feeds: dict[str, np.ndarray] = {}
    position = 0
    offsets = encoder.get("offsets") or {}
    for col in encoder["columns"]:
        cats = encoder["categories"].get(col)
        if cats is None and col in offsets:  # a float64 input (see run_to_onnx)
            value = float(offsets[col]) + mean[position] + scale[position] * rng.standard_normal((n, 1))
            if fills:
                value[position % n] = np.nan
            feeds[col] = value
            position += 1
        elif cats is None:
            value = (mean[position] + scale[position] * rng.standard_normal((n, 1))).astype(np.float32)
            if fills:
                value[position % n] = np.nan  # a missing value in each numeric column
            feeds[col] = value
            position += 1
        else:
            value = np.array(rng.choice(cats, size=(n, 1)), dtype=object)
            if fills:
                value[(position + 1) % n] = ""  # a missing category: filled with the most frequent one
            feeds[col] = value
            position += len(cats)
    return feeds


@contextlib.contextmanager
def _unwritable(flag: str, path: str | os.PathLike[str], written: list[str]) -> Iterator[None]:
    """An OSError writing ``path`` said as predict says it (the errno alone names a hidden temporary file),
    with the files this export already wrote (``written``: their lines), which are complete and stay."""
    try:
        yield
    except OSError as exc:
        from ..train.callbacks.write_errors import failure_advice, failure_cause

        done = "; ".join(line.replace("wrote", "already wrote", 1) for line in written)
        raise ConfigError(
            f"export: could not write {flag} {os.fspath(path)} ({exc.strerror or exc}){failure_cause(exc)}; "
            f"{failure_advice(exc)} and run export "
            f"again{f' ({done}: that file is complete)' if done else ''}"
        ) from None


def export_run(
    run: str | os.PathLike[str], onnx_path: str | os.PathLike[str] | None = None,
    safetensors_path: str | os.PathLike[str] | None = None,
) -> list[str]:  # fmt: skip
    """Write the run's ONNX graph and/or safetensors weights; return one line per file written.

    The ONNX graph is checked (``onnx.checker``) and run on random inputs against downslope's own
    prediction path before it is written.

    Example:
        >>> export_run("runs/iris-adam", safetensors_path="iris.safetensors")  # doctest: +SKIP
        ['wrote the weights of runs/iris-adam (4 arrays) to iris.safetensors']
    """
    from ..runs import check_output_file, load_run
    from ..serialization import atomic_write_bytes

    if onnx_path is None and safetensors_path is None:
        raise ConfigError("export: nothing to write; give --onnx PATH and/or --safetensors PATH")
    for flag, path in (("--onnx", onnx_path), ("--safetensors", safetensors_path)):
        if path is not None:
            check_output_file(path, run, flag)
    if onnx_path is not None and safetensors_path is not None:
        if os.path.realpath(onnx_path) == os.path.realpath(safetensors_path):
            raise ConfigError(
                f"export: --onnx and --safetensors are the same file {os.fspath(onnx_path)}; the second would "
                "replace the first, give two paths"
            )
    model, state = load_run(os.fspath(run), note=lambda message: print(f"export: {message}", file=sys.stderr))
    lines: list[str] = []
    if onnx_path is not None:
        ox.require_onnx()
        proto = run_to_onnx(model, state)
        feeds = sample_feeds(state, 7)
        ox.verify(proto, feeds, reference_outputs(model, state, feeds), where=f"export {run}")
        with _unwritable("--onnx", onnx_path, lines):
            atomic_write_bytes(onnx_path, proto.SerializeToString())  # parents made, never a half-written file
        lines.append(
            f"wrote {os.fspath(run)} as ONNX to {os.fspath(onnx_path)} (inputs: "
            f"{', '.join(i.name for i in proto.graph.input)}; outputs: {', '.join(o.name for o in proto.graph.output)})"
        )
    if safetensors_path is not None:
        from ..export.safetensors import save_safetensors

        weights = state["model"]
        with _unwritable("--safetensors", safetensors_path, lines):
            save_safetensors(
                weights, safetensors_path, metadata={"downslope_config": json.dumps(state["config"], default=str)}
            )
        lines.append(f"wrote the weights of {os.fspath(run)} ({len(weights)} arrays) to {os.fspath(safetensors_path)}")
    return lines
