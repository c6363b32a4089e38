"""The app's garbage-collector policy: no full collections while a reply streams."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from qwenchat.tui.collector import Collector


@pytest.fixture
def collector() -> Iterator[Collector]:
    thresholds = gc.get_threshold()
    yield Collector()
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_streaming_stops_full_collections_and_settling_freezes_what_is_alive(
    collector: Collector,
) -> None:
    young, middle, oldest = gc.get_threshold()
    collector.streaming()
    assert gc.get_threshold()[:2] == (young, middle) and gc.get_threshold()[2] > 10**8
    before = gc.get_freeze_count()
    kept = [[i] for i in range(1000)]  # objects the collector tracks
    collector.settled()
    assert gc.get_threshold() == (young, middle, oldest)
    assert gc.get_freeze_count() >= before + len(kept)


def test_reclaim_collects_cycles_left_in_the_frozen_heap(collector: Collector) -> None:
    class Node:
        pass

    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    alive = weakref.ref(cycle)
    collector.settled()  # the cycle is frozen while alive
    del cycle
    gc.collect()
    assert alive() is not None  # frozen: a normal collection does not see it
    collector.reclaim()
    assert alive() is None
