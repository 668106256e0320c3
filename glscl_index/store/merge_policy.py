"""Which segments a commit merges: a tiered policy that bounds their number and what merging costs.

Segments fall into tiers of size: tier t holds segments of FLOOR_ROWS x F^t to FLOOR_ROWS x F^(t+1)
rows (F = SEGMENTS_PER_TIER; smaller ones are tier 0). When a tier holds F segments they are
merged into one of the next tier. A row is therefore rewritten about once per tier it climbs,
log_F(N / FLOOR_ROWS) times over an index's life, and at most ~(F - 1) segments sit in each tier.
F = 32 keeps a first run of 1M units with a commit every 100 videos at about three writes of
each row (100 -> 3,200 -> 102,400 rows), where F = 10 would write each row five times; a reader
pays for the segment count only when it opens (one file each), not per query, because it searches
one index over every segment's codes (store/ann.py). A segment whose dead rows exceed
MAX_DEAD_FRACTION is rewritten without them.

A segment of fewer than COPY_MIN_ROWS rows is written without the Arrow copy that readers memory-map
(store/shards.py): a reader holds its decoded rows instead (~10 KB each at ViT-B/32 sizes). Such segments
are the small ones of tier 0, merged soon after they are written; in a first run committed every 100
videos their copies were half the bytes of every row's first write (benchmarks/index_scale.py, (b)).
Tier 0 holds fewer than F of them, so a reader holds at most F x COPY_MIN_ROWS rows that way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from glscl_index.store.manifest import ShardRef


@dataclass(frozen=True)
class MergePolicy:
    segments_per_tier: int = 32
    floor_rows: int = 100  # a commit of 100 one-unit videos
    max_dead_fraction: float = 0.3
    copy_min_rows: int = 1000

    def copies(self, rows: int) -> bool:
        """Whether a new segment of ``rows`` rows gets an Arrow copy."""
        return rows >= self.copy_min_rows

    def tier(self, rows: int) -> int:
        return int(math.log(max(rows, self.floor_rows) / self.floor_rows, self.segments_per_tier) + 1e-9)

    def select(self, segments: list[ShardRef]) -> list[ShardRef]:
        """The segments to merge into one now (empty: none), given the generation's segments."""
        doomed = [s for s in segments if s.rows == 0 or len(s.dead) > self.max_dead_fraction * s.rows]
        tiers: dict[int, list[ShardRef]] = {}
        for segment in segments:
            if segment not in doomed:
                tiers.setdefault(self.tier(segment.rows - len(segment.dead)), []).append(segment)
        full = [members for _, members in sorted(tiers.items()) if len(members) >= self.segments_per_tier]
        return doomed + (full[0] if full else [])
