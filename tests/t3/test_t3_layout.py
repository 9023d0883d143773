"""Which rows each schedule computes, in which order, and the bad-input errors."""

import pytest

from companion.t3 import ChunkTracker, check_rows, item_rows, make_layout
from companion.t3.layout import block_of


@pytest.mark.parametrize("schedule, chunks", [("sequential", 1), ("coarse", 2), ("fine", 1), ("fine", 3)])
@pytest.mark.parametrize("p", [1, 2, 4])
def test_every_row_is_computed_once(schedule, chunks, p):
    layout = make_layout(schedule, p, chunks)
    m_rows = 12 * p
    for rank in range(p):
        covered = sorted(r for item in layout.items for r in range(*item_rows(item, rank, m_rows, layout).indices(m_rows)))
        assert covered == list(range(m_rows))


def test_fine_order_is_staggered_per_rank():
    layout = make_layout("fine", 4, 1)
    # rank r computes blocks r-1, r-2, r-3 and its own block r last
    assert [block_of(item, 0, 4) for item in layout.items] == [3, 2, 1, 0]
    assert [block_of(item, 2, 4) for item in layout.items] == [1, 0, 3, 2]


def test_coarse_groups_take_one_chunk_of_every_block():
    layout = make_layout("coarse", 2, 3)
    assert layout.groups[1] == ((0, 1), (1, 1))
    assert len(layout.sent_items) == 3


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="does not divide the output"):
        check_rows(10, 4, 1)
    with pytest.raises(ValueError, match="chunks per block do not divide"):
        check_rows(16, 2, 3)
    with pytest.raises(ValueError, match="schedule must be one of"):
        make_layout("eager", 2)
    with pytest.raises(ValueError, match="chunks"):
        make_layout("fine", 2, 0)
    with pytest.raises(ValueError, match="world_size"):
        make_layout("fine", 0)


def test_tracker_fires_once_when_full():
    fired = []
    tracker = ChunkTracker({"a": 2, "b": 1}, fired.append)
    tracker.record("a")
    assert fired == [] and not tracker.complete
    tracker.record("b")
    tracker.record("a")
    assert fired == ["b", "a"] and tracker.complete
    with pytest.raises(ValueError, match="already received"):
        tracker.record("a")
    with pytest.raises(ValueError, match="unknown chunk"):
        tracker.record("c")
    with pytest.raises(ValueError, match="expect an integer"):
        ChunkTracker({"a": 0}, fired.append)
