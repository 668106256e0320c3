"""`glscl check`: verify an index's files, and repair what can be repaired without re-embedding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.options import IndexOption, index_dir
from glscl_index.errors import IndexCorruptError, repair_hint

if TYPE_CHECKING:  # faiss loads with glscl_index.store.check: imported when the command runs, not at start-up
    from glscl_index.store.check import CheckReport, Problem, RepairReport


def check(
    index: Path = IndexOption,
    repair: bool = typer.Option(
        False, "--repair", help="Fix what was found: restore the previous manifest, rebuild FAISS, copies and catalog, "
        "drop damaged shards (their videos are embedded again by the next `glscl index`).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    quick: bool = typer.Option(
        False, "--quick", help="Read footers and headers only (seconds on any index), not every shard's data.",
    ),
) -> None:
    """Check that every file of the index is intact; exit 6 when something is damaged (5: no index)."""
    from glscl_index.store.check import check_index, repair_index

    root = index_dir(index)
    if repair:
        report = repair_index(root, deep=not quick)
        remaining = report.remaining
        document = report.to_dict()
        if not as_json:
            _print_repair(report)
    else:
        checked = check_index(root, deep=not quick)
        remaining = checked.problems
        document = checked.to_dict()
        if not as_json:
            _print_check(checked)
    if as_json:
        print(json.dumps(document, indent=2))
    if remaining:
        hint = "" if repair else repair_hint(root)
        raise IndexCorruptError(f"{root}: {len(remaining)} problem(s) {'left' if repair else 'found'}{hint}")


def _print_check(report: CheckReport) -> None:
    if report.healthy:
        depth = "deep" if report.deep else "quick"
        print(
            f"ok: {report.root}: generation {report.generation}, {report.shards} shards, "
            f"{report.live_units} units ({depth} check)"
        )
    _print_problems("damaged", report.problems)


def _print_repair(report: RepairReport) -> None:
    if not report.found:
        print(f"ok: {report.root}: nothing to repair")
        return
    _print_problems("found", report.found)
    for action in report.repaired:
        print(f"repaired: {action}")
    _print_problems("still damaged", report.remaining)
    if report.healthy:
        published = f" as generation {report.generation}" if report.generation is not None else ""
        print(f"ok: {report.root}: repaired{published}")


def _print_problems(label: str, problems: list[Problem]) -> None:
    for problem in problems:
        lost = " [units lost: re-embedded by the next `glscl index`]" if problem.loses_units else ""
        print(f"{label}: {problem}{lost}")
