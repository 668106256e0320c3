"""Turn parsed annotations into a DatasetSplit: find each video file, fail or skip.

Readers only parse; this module owns the one policy for missing videos and
malformed rows: a DatasetError before anything starts, or, with
``skip_missing=True``, leave them out and count them on the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from glscl_index.data.records import Clip, DatasetSplit
from glscl_index.errors import DatasetError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")
_SHOWN = 3  # names quoted in a one-line error


@dataclass(frozen=True)
class Annotation:
    """One parsed clip before its file is found.

    names: candidate file names (relative to the video root, or absolute),
    tried in order; each is tried as is, then with each of VIDEO_EXTENSIONS
    appended.
    """

    video_id: str
    names: tuple[str, ...]
    captions: tuple[str, ...]
    start_s: float | None = None
    end_s: float | None = None


def find_video(video_root: Path, names: tuple[str, ...]) -> Path | None:
    """The first existing file among ``names`` under ``video_root`` (see Annotation)."""
    for name in names:
        path = video_root / name  # an absolute name stays absolute
        for candidate in (path, *(path.with_name(path.name + ext) for ext in VIDEO_EXTENSIONS)):
            if candidate.is_file():
                return candidate
    return None


def _preview(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (", ..." if len(items) > _SHOWN else "")


def build_split(
    name: str,
    annotations: list[Annotation],
    video_root: Path,
    *,
    paragraph: bool = False,
    malformed: list[str] | None = None,
    skip_missing: bool = False,
) -> DatasetSplit:
    """Resolve every annotation's video file and build the split.

    malformed: one "file:line: reason" per row the reader could not parse.
    Raises DatasetError naming how many rows are malformed or videos missing
    (and the first few), unless ``skip_missing``.
    """
    malformed = malformed or []
    if malformed and not skip_missing:
        raise DatasetError(
            f"{name}: {len(malformed)} malformed annotation row(s): {_preview(malformed)}"
            " (--skip-missing leaves them out)"
        )
    clips: list[Clip] = []
    missing: list[str] = []
    for annotation in annotations:
        path = find_video(video_root, annotation.names)
        if path is None:
            missing.append(annotation.video_id)
            continue
        clips.append(
            Clip(
                video_id=annotation.video_id,
                video_path=str(path),
                captions=annotation.captions,
                start_s=annotation.start_s,
                end_s=annotation.end_s,
            )
        )
    if missing and not skip_missing:
        raise DatasetError(
            f"{name}: {len(missing)} of {len(annotations)} videos missing under {video_root}: "
            f"{_preview(missing)} (--skip-missing leaves them out)"
        )
    if not clips:
        raise DatasetError(f"{name}: no clips with a video file under {video_root}")
    return DatasetSplit(name, clips, paragraph, skipped=len(missing) + len(malformed))
