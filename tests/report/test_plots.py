"""Label placement on the Pareto plot: near-coincident runs get labels that do not overlap."""

from __future__ import annotations

from mixsd.report.plots import stack_labels


def test_coincident_points_fan_out_and_lone_points_keep_the_default_offset():
    height, width = 7.0, 40.0
    offsets = stack_labels([(100, 200, width)] * 4 + [(300, 50, width)], height)
    assert offsets[0] == 3 and offsets[-1] == 3
    stacked = sorted(offsets[:4])
    assert all(b - a >= height for a, b in zip(stacked, stacked[1:], strict=False))


def test_labels_side_by_side_do_not_move():
    assert stack_labels([(0, 0, 40.0), (50, 0, 40.0)], 7.0) == [3, 3]
