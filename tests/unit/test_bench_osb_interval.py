"""bench/osb.py's bootstrap interval of the ratio of medians: it brackets the ratio, collapses when
every round agrees, and keeps a round's two figures together."""
from __future__ import annotations

import statistics

from bench.osb import ratio_interval


def test_rounds_that_agree_give_a_point() -> None:
    assert ratio_interval([0.2] * 30, [0.1] * 30) == (2.0, 2.0)


def test_the_interval_brackets_the_ratio_and_widens_with_the_noise() -> None:
    berth = [0.1 + 0.01 * (i % 7) for i in range(30)]
    steady = [figure * 1.1 for figure in berth]  # every round 1.1×: the medians' ratio is 1.1 whatever is drawn
    low, high = ratio_interval(steady, berth)
    assert round(low, 9) == round(high, 9) == 1.1
    noisy = [figure * (0.6 if i % 3 == 0 else 1.6) for i, figure in enumerate(berth)]
    low, high = ratio_interval(noisy, berth)
    assert low < statistics.median(noisy) / statistics.median(berth) < high and high - low > 0.2
