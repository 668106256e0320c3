"""The one place where library errors become one-line messages and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable

from glscl_index.errors import GLSCLError

INTERRUPTED = 130


def run_with_clean_errors(entry: Callable[[], object]) -> None:
    """Run the CLI; a library error prints ``glscl: error: ...`` on one line and exits non-zero."""
    try:
        entry()
    except GLSCLError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"glscl: error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("glscl: interrupted; committed work is kept, re-run to finish", file=sys.stderr)
        sys.exit(INTERRUPTED)
