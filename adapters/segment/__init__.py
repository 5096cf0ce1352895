"""Segment product events into contract v1: ``adapt_segment(source, landing, mapping)``.

See ``adapters/segment/adapter.py`` for the steps and ``docs/adapters.md`` for the rules.
"""

from adapters.segment.adapter import adapt_segment
from adapters.segment.mapping import SegmentMapping

__all__ = ["SegmentMapping", "adapt_segment"]
