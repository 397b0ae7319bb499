"""Renderers of run results: terminal summary and live view, JSON."""

from ._json import write_json as write_json
from ._terminal import LiveView as LiveView
from ._terminal import render_summary as render_summary

__all__ = ["LiveView", "render_summary", "write_json"]
