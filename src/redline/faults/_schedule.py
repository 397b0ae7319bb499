"""Faults on schedule: apply each at its time, undo it when its time is up, undo all at the end.

A schedule drives either proxies of this process (a :class:`FaultProxy`) or an external
proxy through Toxiproxy's API (Toxiproxy itself, or ``redline proxy``), and host faults
(processes, cgroups, neighbours, network, disks) through a :class:`HostContext`. Every
fault is undone when the schedule stops, whatever happened: a run that ends early or
crashes leaves no proxy down, no toxic, no paused process and no cgroup limit behind (and
what a killed redline leaves, the watchdog undoes).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._errors import FaultError
from ._host import HostContext, HostFault, host_fault
from ._proxy import ProxyError
from ._server import FaultProxy
from ._toxics import Toxic

__all__ = ["FaultSchedule", "LocalProxies", "ProxyControl", "RemoteProxies", "ScheduledFault"]


@dataclass(frozen=True)
class ScheduledFault:
    """One fault of a schedule, from ``at_s`` for ``for_s``.

    It is ``down`` or a toxic on ``proxy``, or a host fault.
    """

    name: str
    proxy: str
    at_s: float
    for_s: float
    down: bool = False
    toxic: Mapping[str, Any] | None = None
    host: HostFault | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ScheduledFault:
        """From a plan's fault (``FaultSpec.to_dict()``), its toxic or host fault checked.

        Raises:
            ToxicError: the toxic is not a valid one.
            HostFaultError: the host fault is not a valid one.
        """
        if data.get("host"):
            ((kind, spec),) = dict(data["host"]).items()
            return cls(
                name=str(data["name"]),
                proxy=str(data.get("proxy", "")),
                at_s=float(data["at_s"]),
                for_s=float(data["for_s"]),
                host=host_fault(
                    str(data["name"]),
                    kind,
                    spec,
                    for_s=float(data["for_s"]),
                    max_s=data.get("max_s"),
                ),
            )
        toxic = data.get("toxic")
        if toxic is not None:
            checked = Toxic.from_dict({**toxic, "name": f"redline-{data['name']}"})
            toxic = checked.to_dict()
        return cls(
            name=str(data["name"]),
            proxy=str(data["proxy"]),
            at_s=float(data["at_s"]),
            for_s=float(data["for_s"]),
            down=toxic is None,
            toxic=toxic,
        )


class ProxyControl(Protocol):
    """What schedules and experiments do to proxies, wherever the proxies run."""

    def add_toxic(self, proxy: str, toxic: Mapping[str, Any]) -> None:
        """Add a toxic (Toxiproxy's JSON form) to ``proxy``."""

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove the toxic ``name`` from ``proxy`` (nothing if it is not there)."""

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """Bring ``proxy`` up or take it down."""

    def reset(self) -> None:
        """Every proxy up, every toxic removed."""


class LocalProxies:
    """The proxies of a :class:`FaultProxy` running in this process (``running()``)."""

    def __init__(self, faults: FaultProxy) -> None:
        """Control ``faults``' proxies from any thread."""
        self.faults = faults

    def add_toxic(self, proxy: str, toxic: Mapping[str, Any]) -> None:
        """Add a toxic to ``proxy``."""
        self.faults.get(proxy).add_toxic(toxic)

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic, if it is there."""
        target = self.faults.get(proxy)
        if any(t.name == name for t in target.toxics):
            target.remove_toxic(name)

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """Up or down."""
        self.faults.call(self.faults.get(proxy).set_enabled(enabled))

    def reset(self) -> None:
        """Every proxy up, no toxics."""
        self.faults.call(self.faults.reset())


class RemoteProxies:
    """Proxies behind Toxiproxy's API at ``url`` (Toxiproxy, or ``redline proxy``)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        """Talk to the API at ``url`` (``http://host:8474``)."""
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout):
                pass
        except urllib.error.HTTPError as exc:
            if not (method == "DELETE" and exc.code == 404):  # already gone is fine
                raise ProxyError(f"{method} {self.url}{path}: {exc}") from exc
        except OSError as exc:
            raise ProxyError(f"{method} {self.url}{path}: {exc}") from exc

    def add_toxic(self, proxy: str, toxic: Mapping[str, Any]) -> None:
        """POST the toxic."""
        self._call("POST", f"/proxies/{proxy}/toxics", dict(toxic))

    def remove_toxic(self, proxy: str, name: str) -> None:
        """DELETE the toxic."""
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """POST enabled."""
        self._call("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def reset(self) -> None:
        """POST /reset."""
        self._call("POST", "/reset")


class FaultSchedule:
    """Applies ``faults`` on time from :meth:`start`; :meth:`stop` undoes what is still on.

    ``applied`` records, per fault name, when it was actually applied and undone (seconds
    from the start), and ``errors`` what could not be done. Host faults act through
    ``host`` (the served target, the ledger); :meth:`log` says what each one did.
    """

    def __init__(
        self,
        faults: Sequence[ScheduledFault],
        target: FaultProxy | ProxyControl | None,
        *,
        host: HostContext | None = None,
    ) -> None:
        """Prepare; nothing happens before :meth:`start`."""
        self.faults = sorted(faults, key=lambda f: f.at_s)
        self.target: ProxyControl | None = (
            LocalProxies(target) if isinstance(target, FaultProxy) else target
        )
        self.host = host or HostContext(proxies=self.target)
        self.applied: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self._on: list[ScheduledFault] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._started = 0.0

    def start(self, *_: object) -> None:
        """Start the clock (usable as ``run_plan``'s ``on_start``)."""
        self._started = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name="redline-fault-schedule", daemon=True
        )
        self._thread.start()

    def _events(self) -> list[tuple[float, bool, ScheduledFault]]:
        events = [(f.at_s, True, f) for f in self.faults]
        events += [(f.at_s + f.for_s, False, f) for f in self.faults]
        return sorted(events, key=lambda e: (e[0], e[1]))  # undo before apply at a tie

    def _run(self) -> None:
        for at, apply, fault in self._events():
            if self._stop.wait(max(0.0, self._started + at - time.monotonic())):
                return
            self._do(fault, apply=apply)

    def _do(self, fault: ScheduledFault, *, apply: bool) -> None:
        with self._lock:
            if apply == (fault in self._on):
                return
            try:
                if fault.host is not None:
                    if apply:
                        fault.host.apply(self.host)
                    else:
                        for problem in fault.host.undo():
                            self.errors.append(f"undoing {problem}")
                elif self.target is None:
                    raise ProxyError("no fault proxies to act on")
                elif fault.down:
                    self.target.set_enabled(fault.proxy, not apply)
                elif apply:
                    assert fault.toxic is not None
                    self.target.add_toxic(fault.proxy, fault.toxic)
                else:
                    assert fault.toxic is not None
                    self.target.remove_toxic(fault.proxy, str(fault.toxic["name"]))
            except (FaultError, OSError, TimeoutError, ValueError) as exc:
                self.errors.append(f"{'applying' if apply else 'undoing'} {fault.name}: {exc}")
                return
            offset = time.monotonic() - self._started
            self.applied.setdefault(fault.name, []).append(offset)
            if apply:
                self._on.append(fault)
            else:
                self._on.remove(fault)

    def stop(self) -> None:
        """Stop the clock and undo every fault still on."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for fault in list(self._on):
            self._do(fault, apply=False)

    def log(self) -> list[dict[str, Any]]:
        """Per fault: when it was applied and undone, and for host faults how (``via``)."""
        out = []
        for fault in self.faults:
            times = self.applied.get(fault.name, [])
            entry: dict[str, Any] = {
                "name": fault.name,
                "applied_at_s": round(times[0], 3) if times else None,
                "undone_at_s": round(times[1], 3) if len(times) > 1 else None,
            }
            if fault.host is not None:
                entry.update(fault.host.to_dict())
            problems = [e for e in self.errors if f" {fault.name}" in e]
            if problems:
                entry["errors"] = problems
            out.append(entry)
        return out
