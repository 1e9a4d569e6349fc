"""Take a trained model elsewhere: ONNX graphs (:mod:`downslope.export.onnx`) and safetensors weights
(:mod:`downslope.export.safetensors`). Arrows go one way: this package reads ``nn`` Modules, and no
layer knows about any exchange format. ``onnx`` and ``safetensors`` are optional extras, imported
only when one of these functions runs.

Example:
    >>> import downslope as ds
    >>> ds.save_safetensors(ds.nn.Linear(2, 3).state_dict(), "weights.safetensors")  # doctest: +SKIP
"""
