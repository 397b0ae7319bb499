"""A finished run as a whole: what it measured, where it came from, and how it was judged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._codec import from_data, to_data
from ._result import RunResult
from ._slo import FAIL, Verdict
from ._target import TargetReport
from ._traces import TraceReport

__all__ = ["RunMeta", "RunOutcome"]


@dataclass(frozen=True, slots=True)
class RunMeta:
    """Where and how a run was made.

    Attributes:
        labels: free ``key=value`` labels (``--label branch=main``).
        git_commit: the commit checked out in the working directory, if it is a git one.
        git_dirty: whether tracked files differed from that commit.
        host: the host name of the machine that generated the load.
        version: the redline version that made the run.
        pid: the process that recorded the run (tells a killed run from a running one).
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    git_dirty: bool | None = None
    host: str = ""
    version: str = ""
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the ``meta`` of an exported run)."""
        data: dict[str, Any] = to_data(self)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMeta:
        """Rebuild from :meth:`to_dict` output (missing fields take their defaults).

        Raises:
            ValueError: ``data`` is not a run's ``meta``.
        """
        return from_data(cls, data, path="$.meta")


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: the result, where it came from, its verdicts and what was read off it.

    This is what :func:`redline.run` returns, what observers' ``on_finish`` receives,
    what a store gives back, and (as :meth:`to_dict`) the ``--out`` document.

    Attributes:
        result: what the run measured.
        meta: labels, git commit, host and version of the run.
        verdicts: the verdict on each of the plan's objectives.
        analysis: what was read off the run beyond the verdicts (``shape`` of a spike or
            soak, ``faults`` and their impact), in the JSON form of docs/result-json.md.
        target: what was seen of the target from inside, when the run watched it.
        traces: the traced requests and what their spans say, when the plan traced.
    """

    result: RunResult
    meta: RunMeta = field(default_factory=RunMeta)
    verdicts: tuple[Verdict, ...] = ()
    analysis: Mapping[str, Any] = field(default_factory=dict)
    target: TargetReport | None = None
    traces: TraceReport | None = None

    @property
    def passed(self) -> bool:
        """Whether the run completed, kept up with its load, and no objective failed."""
        return (
            self.result.complete
            and not self.result.generator().limited
            and all(v.outcome != FAIL for v in self.verdicts)
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: the result's, plus ``meta``, ``verdicts`` and ``analysis``."""
        data = self.result.to_dict()
        data["meta"] = self.meta.to_dict()
        data["verdicts"] = [v.to_dict() for v in self.verdicts]
        if self.analysis:
            data["analysis"] = dict(self.analysis)
        if self.target is not None:
            data["target"] = self.target.to_dict()
        if self.traces is not None:
            data["traces"] = self.traces.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunOutcome:
        """Rebuild from :meth:`to_dict` output (or a plain result document).

        Raises:
            ValueError: ``data`` is not a redline run.
        """
        try:
            verdicts = tuple(Verdict.from_dict(v) for v in data.get("verdicts", ()))
            meta = RunMeta.from_dict(data.get("meta", {}))
            analysis = dict(data.get("analysis", {}))
            target = TargetReport.from_dict(data["target"]) if data.get("target") else None
            traces = TraceReport.from_dict(data["traces"]) if data.get("traces") else None
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"malformed run: missing or wrong {exc}") from exc
        return cls(RunResult.from_dict(data), meta, verdicts, analysis, target, traces)
