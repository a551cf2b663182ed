"""Bulk work without the cyclic garbage collector.

Parsing and writing a file of 100,000 rows allocates millions of objects that live until
the end (records, their strings, the rows written): each generation-2 collection walks
all of them again, which cost a quarter of an import's time. These objects form no
cycles; reference counting frees them as usual while the collector is paused.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block; restore it as it was (nested blocks and
    callers that had it off keep their setting)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
