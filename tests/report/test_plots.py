"""Label placement on the Pareto plot: near-coincident runs get labels that do not overlap."""

from __future__ import annotations

from itertools import pairwise

from mixsd.report.plots import LABEL_DY, method_front, stack_labels


def test_coincident_points_fan_out_and_lone_points_keep_the_default_offset():
    height, width = 7.0, 40.0
    offsets = stack_labels([(100, 200, width)] * 4 + [(300, 50, width)], height)
    assert offsets[0] == LABEL_DY and offsets[-1] == LABEL_DY
    stacked = sorted(offsets[:4])
    assert all(b - a >= height for a, b in pairwise(stacked))


def test_labels_side_by_side_do_not_move():
    assert stack_labels([(0, 0, 40.0), (50, 0, 40.0)], 7.0) == [LABEL_DY, LABEL_DY]


def test_a_methods_front_keeps_the_points_no_other_beats_on_both_axes():
    points = [(0.6, 0.72), (0.5, 0.72), (0.55, 0.86), (0.2, 0.84), (0.63, 0.7)]
    assert method_front(points) == [(0.55, 0.86), (0.6, 0.72), (0.63, 0.7)]
    # NLL: lower keeps more
    assert method_front([(8.0, 0.9), (7.5, 0.8), (8.5, 0.7)], higher_x=False) == [(8.0, 0.9), (7.5, 0.8)]
