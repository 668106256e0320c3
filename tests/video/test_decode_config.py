"""DecodeConfig refuses impossible limits when it is made, before any worker or index folder exists."""

import pytest

from glscl_index.errors import InvalidOptionError
from glscl_index.video.decode_config import DecodeConfig, auto_decode_workers


@pytest.mark.parametrize(
    ("limits", "option"),
    [({"workers": 0}, "--workers"), ({"timeout_s": 0}, "--timeout"), ({"memory_limit_mb": 0}, "--memory-limit"),
     ({"max_in_flight": -1}, "max_in_flight")],
)
def test_impossible_limits_are_refused(limits, option):
    with pytest.raises(InvalidOptionError, match=option) as raised:
        DecodeConfig(**limits)
    assert raised.value.exit_code == 2 and isinstance(raised.value, ValueError)


def test_defaults_leave_a_core_for_the_model():
    assert DecodeConfig().workers >= 1 and DecodeConfig().in_flight == 2 * DecodeConfig().workers


@pytest.mark.parametrize(
    ("cores", "model_fps", "per_core_fps", "expected"),
    [
        (16, 400.0, 100.0, 4),  # the model's rate over one core's: 4 workers keep it fed
        (16, 401.0, 100.0, 5),  # rounded up: never decode-bound by a fraction
        (16, 10_000.0, 100.0, 15),  # a fast GPU: every core but the one that feeds it and writes the index
        (2, 10_000.0, 100.0, 1),
        (1, 10_000.0, 100.0, 1),  # at least one
        (16, 1.0, 100.0, 1),
    ],
)
def test_auto_workers_match_the_model_rate_bounded_by_the_cores(cores, model_fps, per_core_fps, expected):
    # Reference: min(ceil(model / per-core decode rate), cores - 1), at least 1.
    assert auto_decode_workers(cores, model_fps, per_core_fps) == expected
