"""Isolated decoding: a worker killed by a signal, a hang and a memory blow-up fail one file each."""

from glscl_index.errors import DecodeCrashError, DecodeTimeoutError, CorruptVideoError
from glscl_index.video.decode import DecodedVideo
from glscl_index.video.sample import SamplingConfig
from glscl_index.video.workers import DecodeConfig, DecodePool
from tests.media import make_clip
from tests.pipelines.decode_faults import allocate_too_much, crash_or_hang


def test_crash_and_hang_fail_alone(tmp_path):
    paths = [str(make_clip(tmp_path / f"{name}.mp4", seconds=1)) for name in ("a", "crash", "b", "hang", "c")]
    config = DecodeConfig(workers=2, timeout_s=3)
    with DecodePool(config, SamplingConfig(image_size=32), decode_fn=crash_or_hang) as pool:
        results = dict(pool.imap(paths))
    assert list(results) == paths
    assert isinstance(results[paths[1]], DecodeCrashError) and "SIGSEGV" in str(results[paths[1]])
    assert isinstance(results[paths[3]], DecodeTimeoutError)
    for good in (paths[0], paths[2], paths[4]):
        assert isinstance(results[good], DecodedVideo)


def test_memory_limit_fails_the_file(tmp_path):
    path = str(make_clip(tmp_path / "a.mp4", seconds=1))
    with DecodePool(DecodeConfig(workers=1, memory_limit_mb=512), SamplingConfig(image_size=32), decode_fn=allocate_too_much) as pool:
        ((_, result),) = list(pool.imap([path]))
    assert isinstance(result, CorruptVideoError) and "memory" in str(result)
