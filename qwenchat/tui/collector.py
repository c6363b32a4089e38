"""Keeping Python's cycle collector from stalling the UI while a reply streams.

A full collection (of the oldest generation) walks every object Python tracks, and
Textual keeps several small objects for each line on screen: measured on 2 cores,
one took 70-260 ms in the middle of a streamed reply (bench/tui_stream.py), a stall
anyone would see. So while a reply streams only the young generations are collected
(a few milliseconds each), and when it ends everything alive is frozen
(:func:`gc.freeze`: out of the collector's sight; reference counting still frees
whatever is dropped). Opening another conversation unfreezes and collects once: that
is when cycles left behind by removed widgets are reclaimed.
"""

from __future__ import annotations

import gc

_NEVER = 1 << 30  # a threshold the oldest generation's count never reaches


class Collector:
    """The app's policy for :mod:`gc`: :meth:`streaming`, :meth:`settled`, :meth:`reclaim`."""

    def __init__(self) -> None:
        self._thresholds = gc.get_threshold()

    def streaming(self) -> None:
        """A reply is streaming: no full collections until it has settled."""
        young, middle, _ = self._thresholds
        gc.set_threshold(young, middle, _NEVER)

    def settled(self) -> None:
        """The UI is at rest: what is alive now stays out of later collections."""
        gc.set_threshold(*self._thresholds)
        gc.freeze()

    def reclaim(self) -> None:
        """A moment the user expects work (another conversation): collect everything once."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
