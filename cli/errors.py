"""The one place where library errors become one-line messages and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable

from typer.core import TyperGroup

try:  # Typer >= 0.26 runs on its own copy of click, and raises that copy's exceptions
    from typer._click.exceptions import NoSuchOption
except ImportError:  # pragma: no cover
    from click.exceptions import NoSuchOption

from glscl_index.errors import GLSCLError

INTERRUPTED = 130
DASH_QUERY_HINT = "; a query that starts with '-' goes after `--`, e.g. glscl search -- \"-red circle\""


class Interrupted(Exception):
    """Ctrl-C inside a command (Typer would otherwise turn it into a silent exit 130)."""


class GlsclGroup(TyperGroup):
    """The root command group: Ctrl-C in any command reaches ``run_with_clean_errors``, usage errors get hints."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None
        except NoSuchOption as exc:
            if exc.ctx is not None and exc.ctx.command.name == "search":
                exc.message += DASH_QUERY_HINT
            raise


def run_with_clean_errors(entry: Callable[[], object]) -> None:
    """Run the CLI; a library error prints ``glscl: error: ...`` on one line and exits non-zero.

    Usage errors (unknown option, missing argument) keep click's own message and exit 2.
    """
    try:
        entry()
    except GLSCLError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"glscl: error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except OSError as exc:
        # The disk filled up, a share went away mid-run: committed work is intact (see docs/storage.md).
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"glscl: error: {(exc.strerror or str(exc)).lower()}{where}", file=sys.stderr)
        sys.exit(1)
    except (Interrupted, KeyboardInterrupt):
        print("glscl: interrupted; committed work is kept, re-run to finish", file=sys.stderr)
        sys.exit(INTERRUPTED)
