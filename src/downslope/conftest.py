import importlib.util

import downslope  # noqa: F401  (import the package first, so doctest collection does not shadow ds.tensor)

# einops is optional: without it, the module of its layers cannot be imported for its doctests
collect_ignore = [] if importlib.util.find_spec("einops") else ["nn/einops_layers.py"]
