"""redline: performance engineering as code.

Measure a service honestly under load, judge it against its objectives, find where it
breaks, and prove that a change raised its redline.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("redline")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
