"""Exit codes of the ``redline`` command (documented in docs/cli.md)."""

OK = 0
"""The run was carried out and every objective passed (or none was set)."""
FAILED = 1
"""An objective failed, or an abort rule stopped the run."""
USAGE = 2
"""Bad plan, bad option, or an output file that cannot be written."""
NOT_CARRIED_OUT = 3
"""The target was unreachable at start, a worker failed, or the generator was limited."""
INTERRUPTED = 130
"""Stopped by Ctrl-C or SIGTERM; what was measured is still reported and written."""
