"""hub.gc_policy: the serving thresholds are applied and can be put back."""

from __future__ import annotations

import gc

from hub.gc_policy import THRESHOLDS, tune_for_serving


def test_tune_for_serving_applies_the_thresholds_and_returns_the_old_ones() -> None:
    original = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        before = tune_for_serving()
        assert before == (700, 10, 10)
        assert gc.get_threshold() == THRESHOLDS
    finally:
        gc.set_threshold(*original)


def test_every_generation_still_collects() -> None:
    # a zero threshold would switch automatic collection (or an older generation) off
    assert len(THRESHOLDS) == 3
    assert all(t > 0 for t in THRESHOLDS)
