"""The serving process's garbage collector: what start-up built is frozen, young ones rarer."""

import gc
from collections.abc import Iterator

import pytest

from bot.cli import serve


@pytest.fixture
def collector() -> Iterator[None]:
    """Restore the interpreter's collector settings after the test."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_out_of_full_collections(collector: None) -> None:
    kept = [{"built": n} for n in range(1000)]  # like the app's routes: alive until exit
    gc.unfreeze()
    serve.settle_collector()
    assert gc.get_freeze_count() >= len(kept)
    assert not any(o is kept[0] for o in gc.get_objects())  # a full collection skips it


def test_young_collections_come_less_often_and_the_old_thresholds_stay(collector: None) -> None:
    _, middle, old = gc.get_threshold()
    serve.settle_collector()
    assert gc.get_threshold() == (serve.GC_YOUNG, middle, old)
    assert serve.GC_YOUNG > 700
