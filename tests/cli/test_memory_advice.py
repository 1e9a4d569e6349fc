"""The CLI's out-of-memory message names the error even when the MemoryError carries no text."""

from __future__ import annotations

from downslope.cli import _memory_advice


def test_a_bare_memory_error_is_named_not_printed_as_empty_parentheses():
    said = _memory_advice(MemoryError())
    assert said.startswith("out of memory (MemoryError)"), said


def test_a_memory_error_with_a_reason_keeps_it():
    said = _memory_advice(MemoryError("Unable to allocate 3.2 GiB"))
    assert said.startswith("out of memory (Unable to allocate 3.2 GiB)"), said
