"""Progressive rollout: step a canary's share of traffic up, judge each step, roll back.

A :class:`RolloutPlan` names the weights (1% -> 5% -> 25% -> 50% -> 100% by default), a
bake time after each change, the judgement interval and how many failed judgements are
tolerated. Every weight below 100 is judged; 100 is the promotion (no baseline traffic
is left to judge against there: as in Flagger, the last judged step decides). A
:class:`Splitter` moves the traffic: redline's own proxy (its weighted ``split``),
HAProxy's runtime API (``set weight``), or a webhook for anything else (a service mesh,
an ingress controller, a flag service).

Each step: set the weight, wait the bake time, wait one interval, judge that interval.
A judgement that fails (or is marginal, or cannot be made: no data is never a pass)
counts against ``max_failures``; reaching it rolls back: the canary's weight goes to 0.
Every step's outcome is a decision record (what changed, what was expected, what was
measured, who decided), handed to ``record`` (the store keeps them). An interrupted
rollout (Ctrl-C, a crash of the judge) is rolled back too: the split redline changed is
always put back.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redline.core import RedlineError

from ._judge import PASS, Judgement

__all__ = [
    "HELD",
    "PROMOTED",
    "ROLLED_BACK",
    "HAProxySplitter",
    "ProxySplitter",
    "RolloutPlan",
    "RolloutResult",
    "RolloutStep",
    "Splitter",
    "SplitterError",
    "WebhookSplitter",
    "progressive_rollout",
]

PROMOTED = "promoted"
"""A rollout's outcome: the canary reached 100% and passed there."""
ROLLED_BACK = "rolled back"
"""A rollout's outcome: a step failed (or the rollout was stopped); the canary got 0%."""
HELD = "held"
"""A rollout's outcome: the budget gate was closed at the start; nothing was changed."""


class SplitterError(RedlineError, RuntimeError):
    """The traffic splitter refused a change or could not be reached."""


class Splitter(ABC):
    """Moves a share of traffic to the canary."""

    @abstractmethod
    def set_canary_weight(self, percent: float) -> None:
        """Send ``percent`` (0-100) of requests to the canary, the rest to the stable version.

        Raises:
            SplitterError: the splitter refused or could not be reached.
        """

    @abstractmethod
    def describe(self) -> str:
        """What is split, for decision records."""


class HAProxySplitter(Splitter):
    """HAProxy's runtime API: ``set weight <backend>/<server>`` on the two servers.

    ``address`` is the stats socket (``level admin``): a Unix socket path or
    ``host:port``. Weights are set as ``100 - percent`` and ``percent`` (HAProxy takes
    0-256 and splits requests in proportion, per request in ``mode http``).
    """

    def __init__(
        self, address: str, backend: str, stable: str, canary: str, *, timeout_s: float = 5.0
    ) -> None:
        """Drive ``backend``'s servers ``stable`` and ``canary`` through ``address``."""
        self.address = address
        self.backend = backend
        self.stable = stable
        self.canary = canary
        self.timeout_s = timeout_s

    def command(self, line: str) -> str:
        """Send one runtime API command; its answer.

        Raises:
            SplitterError: the socket cannot be reached.
        """
        try:
            if self.address.startswith("/"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.timeout_s)
                    sock.connect(self.address)
                except OSError:
                    sock.close()
                    raise
            else:
                host, _, port = self.address.rpartition(":")
                sock = socket.create_connection((host.strip("[]"), int(port)), self.timeout_s)
        except (OSError, ValueError) as exc:
            raise SplitterError(f"HAProxy runtime API {self.address}: {exc}") from None
        with sock:
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace").strip()

    def weight(self, server: str) -> int:
        """A server's current weight, as HAProxy reports it.

        Raises:
            SplitterError: no such server, or the API cannot be reached.
        """
        answer = self.command(f"get weight {self.backend}/{server}")
        try:
            return int(answer.split()[0])
        except (IndexError, ValueError):
            raise SplitterError(f"HAProxy: get weight {self.backend}/{server}: {answer}") from None

    def set_canary_weight(self, percent: float) -> None:
        """Set both servers' weights (see the class docstring)."""
        share = round(min(max(percent, 0.0), 100.0))
        for server, weight in ((self.canary, share), (self.stable, 100 - share)):
            answer = self.command(f"set weight {self.backend}/{server} {weight}")
            if answer:  # the runtime API answers nothing when a weight is set
                raise SplitterError(f"HAProxy: set weight {self.backend}/{server}: {answer}")

    def describe(self) -> str:
        """``haproxy <address> <backend>/<canary>``."""
        return f"haproxy {self.address} {self.backend}/{self.canary} (stable {self.stable})"


class WebhookSplitter(Splitter):
    """Anything else: POSTs ``{"canary": percent, "stable": 100 - percent}`` to ``url``.

    A 2xx answer means the split is in place; anything else is a :class:`SplitterError`.
    """

    def __init__(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout_s: float = 10.0
    ) -> None:
        """POST to ``url`` with ``headers`` (an Authorization header, say)."""
        self.url = url
        self.headers = dict(headers or {})
        self.timeout_s = timeout_s

    def set_canary_weight(self, percent: float) -> None:
        """POST the split."""
        body = json.dumps({"canary": percent, "stable": 100 - percent}).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={"Content-Type": "application/json", **self.headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s):  # the user's URL
                return
        except urllib.error.HTTPError as exc:
            raise SplitterError(f"webhook {self.url}: answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SplitterError(f"webhook {self.url}: {getattr(exc, 'reason', exc)}") from None

    def describe(self) -> str:
        """``webhook <url>``."""
        return f"webhook {self.url}"


class ProxySplitter(Splitter):
    """redline's own fault proxy (``redline proxy``) as a weighted balancer.

    Sets the proxy's split through its Toxiproxy-style API (redline's ``split``
    extension): ``100 - percent`` to ``stable``, ``percent`` to ``canary``. In HTTP mode
    the proxy draws an upstream per request; in TCP mode, per connection.
    """

    def __init__(
        self, api: str, proxy: str, stable: str, canary: str, *, timeout_s: float = 10.0
    ) -> None:
        """Drive proxy ``proxy`` of the API at ``api`` between two ``host:port`` upstreams."""
        self.api = api.rstrip("/")
        self.proxy = proxy
        self.stable = stable
        self.canary = canary
        self.timeout_s = timeout_s

    def set_canary_weight(self, percent: float) -> None:
        """POST the split to ``/proxies/<name>``."""
        share = min(max(percent, 0.0), 100.0)
        split = [
            {"upstream": self.stable, "weight": 100 - share},
            {"upstream": self.canary, "weight": share},
        ]
        request = urllib.request.Request(
            f"{self.api}/proxies/{urllib.parse.quote(self.proxy)}",
            data=json.dumps({"split": split}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s):  # the user's proxy
                return
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise SplitterError(f"proxy {self.api}: answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SplitterError(f"proxy {self.api}: {getattr(exc, 'reason', exc)}") from None

    def describe(self) -> str:
        """``redline proxy <api> <name>``."""
        return f"redline proxy {self.api} {self.proxy} ({self.stable} / {self.canary})"


@dataclass(frozen=True)
class RolloutPlan:
    """How a canary is stepped up.

    Attributes:
        weights: the canary's share at each step, in percent, rising to 100.
        interval_s: the traffic one judgement looks at.
        bake_s: the wait after a weight change before the judged interval starts (so
            the interval sees the new split only).
        judgements: judgements per step, one interval each.
        max_failures: failed judgements (in the whole rollout) that roll it back.
    """

    weights: tuple[float, ...] = (1.0, 5.0, 25.0, 50.0, 100.0)
    interval_s: float = 60.0
    bake_s: float = 0.0
    judgements: int = 1
    max_failures: int = 1

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError("weights: expected at least one step")
        if any(not 0 < w <= 100 for w in self.weights):
            raise ValueError(f"weights: each in (0, 100], got {list(self.weights)}")
        if list(self.weights) != sorted(self.weights):
            raise ValueError(f"weights: expected them rising, got {list(self.weights)}")
        if self.interval_s <= 0 or self.bake_s < 0:
            raise ValueError("interval must be positive and bake not negative")
        if self.judgements < 1 or self.max_failures < 1:
            raise ValueError("judgements and max_failures: expected at least 1")


@dataclass(frozen=True)
class RolloutStep:
    """One judgement of one step."""

    weight: float
    judgement: Judgement | None
    error: str | None
    at: float

    @property
    def passed(self) -> bool:
        """Only a judgement that was made and passed passes."""
        return self.judgement is not None and self.judgement.verdict == PASS

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "weight": self.weight,
            "passed": self.passed,
            "at": self.at,
            "error": self.error,
            "judgement": None if self.judgement is None else self.judgement.to_dict(),
        }


@dataclass(frozen=True)
class RolloutResult:
    """How a rollout ended, each judgement, and its decision records."""

    outcome: str
    weight: float
    steps: tuple[RolloutStep, ...]
    decisions: tuple[dict[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``redline rollout --json``)."""
        return {
            "outcome": self.outcome,
            "weight": self.weight,
            "steps": [s.to_dict() for s in self.steps],
            "decisions": list(self.decisions),
        }


def progressive_rollout(
    plan: RolloutPlan,
    splitter: Splitter,
    judge: Callable[[float], Judgement],
    *,
    subject: str = "canary",
    record: Callable[[str, Mapping[str, Any]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_step: Callable[[RolloutStep], None] | None = None,
    expected: str = "no judged metric worse beyond its floor; the judgement passes",
    gate: Callable[[float], tuple[bool, str]] | None = None,
) -> RolloutResult:
    """Step ``subject`` through ``plan``'s weights with ``splitter``, judging each step.

    Args:
        plan: the weights, intervals and tolerance.
        splitter: what moves the traffic.
        judge: judges the last ``interval_s`` seconds of both cohorts (may raise: a
            judgement that cannot be made counts as a failed one).
        subject: what is rolled out (the decision records' subject).
        record: called with ``(decision, record)`` for each decision (the store's
            ``add_decision``, say).
        sleep: how to wait (a test's clock can stand in).
        on_step: called after each judgement.
        expected: the expected effect, as the decision records state it.
        gate: asked before each step with the seconds the rollout still has to run:
            open (True) or closed, and why (:class:`BudgetGate.check`); closed before
            the first step, nothing changes (outcome ``held``); later, a rollback.

    Raises:
        SplitterError: the splitter refused the first change (nothing was changed).
    """
    steps: list[RolloutStep] = []
    decisions: list[dict[str, Any]] = []
    failures = 0
    weight = 0.0

    def decide(decision: str, why: str) -> None:
        last = steps[-1] if steps else None
        entry = {
            "subject": subject,
            "decision": decision,
            "what_changed": f"{subject} at {weight:g}% of traffic ({splitter.describe()})",
            "expected_effect": expected,
            "measured_effect": _measured(last),
            "why": why,
            "decided_by": "redline rollout (automatic)",
            "step": len({s.weight for s in steps}),
            "weight": weight,
            "evidence": last.to_dict() if last is not None else None,
        }
        decisions.append(entry)
        if record is not None:
            record(decision, entry)

    def roll_back(why: str) -> RolloutResult:
        splitter.set_canary_weight(0.0)
        decide("rollback", why)
        return RolloutResult(ROLLED_BACK, 0.0, tuple(steps), tuple(decisions))

    judged = [w for w in plan.weights if w < 100]
    step_s = plan.bake_s + plan.interval_s * plan.judgements
    if gate is not None:
        allowed, why = gate(step_s * len(judged))
        if not allowed:
            decide("hold", f"the rollout did not start: {why}")
            return RolloutResult(HELD, 0.0, (), tuple(decisions))
    splitter.set_canary_weight(plan.weights[0])  # refused: nothing changed, nothing to undo
    try:
        for index, step_weight in enumerate(judged):
            if index and gate is not None:
                allowed, why = gate(step_s * (len(judged) - index))
                if not allowed:
                    return roll_back(f"the error budget cannot afford the next step: {why}")
            if index:
                splitter.set_canary_weight(step_weight)
            weight = step_weight
            sleep(plan.bake_s)
            for _ in range(plan.judgements):
                sleep(plan.interval_s)
                try:
                    step = RolloutStep(weight, judge(plan.interval_s), None, time.time())
                except (OSError, RuntimeError, ValueError) as exc:
                    step = RolloutStep(weight, None, f"cannot judge: {exc}", time.time())
                steps.append(step)
                if on_step is not None:
                    on_step(step)
                if not step.passed:
                    failures += 1
                    if failures >= plan.max_failures:
                        return roll_back(
                            f"{failures} failed judgement(s), the most the plan allows is "
                            f"{plan.max_failures - 1}"
                        )
            if index < len(judged) - 1:
                decide("advance", f"the judgement at {weight:g}% passed")
        # All the traffic to the canary: the promotion (at 100% no baseline traffic is
        # left to judge against; as Flagger, the last judged step decides).
        if judged:
            weight = 100.0
            splitter.set_canary_weight(100.0)
        decide("promote", "every judged step passed; the canary has all the traffic")
        return RolloutResult(PROMOTED, weight, tuple(steps), tuple(decisions))
    except BaseException:
        # Stopped (Ctrl-C) or the splitter failed mid-way: the canary goes back to 0%
        # (tried; an unreachable splitter cannot be helped, and the original error says why).
        with contextlib.suppress(SplitterError):
            roll_back("the rollout was stopped before it finished")
        raise


def _measured(step: RolloutStep | None) -> str:
    if step is None:
        return "nothing judged"
    if step.judgement is None:
        return step.error or "no judgement"
    j = step.judgement
    failed = [m.metric for m in j.metrics if m.failed]
    worst = f"; failed: {', '.join(failed)}" if failed else ""
    return (
        f"{j.verdict} (score {j.score:.0f}, {j.requests.get('canary', 0):,} canary requests{worst})"
    )
