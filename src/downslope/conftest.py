import downslope  # noqa: F401  (import the package first, so doctest collection does not shadow ds.tensor)
