"""DecodeConfig refuses impossible limits when it is made, before any worker or index folder exists."""

import pytest

from glscl_index.errors import InvalidOptionError
from glscl_index.video.decode_config import DecodeConfig


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
