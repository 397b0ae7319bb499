"""Load through a queue: jobs timed from the request that made them to their completion.

::

    from redline.scenario import Jobs, scenario

    payments = Jobs(redis="redis://127.0.0.1:6379/0", queue="payments")

    @scenario
    async def checkout(s):
        r = await s.post("/checkout", json={"sku": "lamp"})
        payments.track(s, r.json()["job_id"])        # done when the worker says so

    @scenario
    async def pay(s):                                # no HTTP front: straight onto the queue
        await payments.publish(s, {"order": 42})

A job's latency runs from its iteration's *intended* start (the arrival's, in the open
model: no coordinated omission) to its completion: the finish time a worker announced on
the queue's completion stream (workers made with ``offload.worker(...,
completions=True)`` announce each job on ``{prefix}{queue}:completed``; an entry without
one counts when redline reads it), the arrival of the service's own post to
:attr:`Jobs.callback_url` (``Jobs(webhook=True)``), or the moment a poll of a status URL
finds it done (:meth:`Jobs.wait` with ``poll=``). It is recorded in the custom metrics

- ``{name}_latency`` (a trend, in milliseconds): ``job_latency.p99 < 5s``;
- ``{name}s_completed`` and ``{name}s_timed_out`` (counters): a job not done within
  ``timeout_s`` of its start counts as timed out, never as fast. At the end of the load
  each worker waits for its jobs still pending, within the run's drain grace (5 s, or a
  scenario's ``graceful_stop``); those still pending then are in neither count;
- ``queue_depth``, ``queue_lag``, ``queue_in_flight``, ``queue_oldest_age_s`` and
  ``queue_dead_letters`` (gauges, read every ``watch_s`` by each worker process):
  ``queue_depth.max < 1000``.

They are in every interval of the result, in its summary, in the reports, and objectives
may name them like any custom metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from redline.core import Counter, Gauge, Trend
from redline.engine import Response, Session, at_drain
from redline.resilience import Offload, QueueBackend

__all__ = ["Jobs"]

_log = logging.getLogger("redline")
_SEEN_MAX = 200_000  # completions remembered for jobs not yet tracked (a fast worker)
_GAUGES = ("depth", "lag", "in_flight", "oldest_age_s", "dead_letters")


class Jobs:
    """Jobs on one queue, published or tracked by scenarios (see the module)."""

    def __init__(
        self,
        *,
        redis: str | None = None,
        rabbitmq: str | None = None,
        queue: str = "",
        webhook: bool = False,
        prefix: str = "redline:offload:",
        name: str = "job",
        timeout_s: float = 60.0,
        watch_s: float = 1.0,
        backend: Callable[[], QueueBackend] | None = None,
    ) -> None:
        """Jobs of ``queue`` on Redis (``redis``: a URL) or RabbitMQ (``rabbitmq``).

        ``backend`` makes the queue backend instead (each worker process makes its own).
        With ``webhook``, each worker process also listens on loopback for completions
        the service posts to :attr:`callback_url`; a service redline cannot read the queue
        of needs no broker here at all (``Jobs(webhook=True)``).

        Raises:
            ValueError: both of ``redis`` and ``rabbitmq``, neither (nor ``backend`` nor
                ``webhook``), or a broker without a ``queue``.
        """
        brokers = (redis is not None) + (rabbitmq is not None) + (backend is not None)
        if brokers > 1 or (not brokers and not webhook):
            raise ValueError(
                "Jobs needs one of redis= or rabbitmq= (a URL), or webhook=True (a service "
                "that posts its completions)"
            )
        if brokers and not queue:
            raise ValueError("Jobs needs the queue's name (queue=...) to read a broker")
        self.redis_url = redis
        self.rabbitmq_url = rabbitmq
        self.queue = queue
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.watch_s = watch_s
        self._make_backend = backend
        self.webhook = webhook
        self._listener: socket.socket | None = None
        self.latency = Trend(f"{name}_latency")
        self.completed = Counter(f"{name}s_completed")
        self.timed_out = Counter(f"{name}s_timed_out")
        self.gauges = {g: Gauge(f"queue_{g}") for g in _GAUGES}
        self.metrics = (self.latency, self.completed, self.timed_out, *self.gauges.values())
        """The custom metrics these jobs record (a Python plan declares them by this)."""
        self._offload: Offload | None = None
        self._client: Any = None
        self._waiting: dict[str, tuple[int, asyncio.Future[float | None] | None]] = {}
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drained: asyncio.Event | None = None

    # -- what scenarios call -----------------------------------------------------------------
    async def publish(
        self, session: Session, payload: Any, *, key: str | None = None, name: str | None = None
    ) -> str:
        """Enqueue a job straight onto the queue (no HTTP front) and track it; its id.

        The enqueue is timed as the endpoint ``name`` (``publish:{queue}``); the job's
        latency runs from the iteration's intended start, as for a tracked job.
        """
        offload = self._start()
        if offload is None:
            raise RuntimeError("Jobs(webhook=True) without a broker cannot publish: give redis=")
        async with session.measure(name or f"publish:{self.queue}"):
            job_id = await offload.enqueue(payload, key=key)
        self.track(session, job_id)
        return job_id

    def track(self, session: Session, job_id: str) -> None:
        """Time ``job_id`` from the iteration's intended start to its completion.

        The iteration goes on; the completion is read from the queue's completion stream.
        """
        self._start()
        self._expect(str(job_id), session.started_ns, None)

    async def wait(
        self,
        session: Session,
        job_id: str,
        *,
        poll: str | None = None,
        done: Callable[[Response], bool] | None = None,
        every_s: float = 0.1,
        name: str = "job status",
    ) -> float | None:
        """Wait until ``job_id`` is done; its latency in seconds (None: it timed out).

        With ``poll`` (a path with ``{id}``, e.g. ``"/jobs/{id}"``), the session asks every
        ``every_s`` until ``done(response)`` (default: a 200 whose JSON ``status`` is
        ``"done"``), as a user's page would; the latency is then as fine as ``every_s``.
        Without it, the completion stream says.
        """
        job_id = str(job_id)
        started = session.started_ns
        if poll is None:
            future: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
            self._start()
            self._expect(job_id, started, future)
            return await future
        is_done = done or _status_done
        deadline = started + int(self.timeout_s * 1e9)
        path = poll.replace("{id}", job_id)
        while time.monotonic_ns() < deadline:
            response = await session.get(path, name=name)
            if is_done(response):
                return self._record(time.monotonic_ns() - started)
            await asyncio.sleep(every_s)
        self.timed_out.add(1)
        return None

    # -- behind them ---------------------------------------------------------------------------
    @property
    def callback_url(self) -> str:
        """Where the service posts a job's completion (``Jobs(webhook=True)``).

        ``POST`` JSON ``{"id": "<job id>"}`` (and ``"finished_at"``, wall-clock seconds,
        if the service knows better than the arrival of the post); redline answers 204.
        Pass it to the service with the request that makes the job (a header, or the body).
        """
        self._start()
        if self._listener is None:
            raise RuntimeError("callback_url needs Jobs(webhook=True)")
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}/jobs/done"

    def _start(self) -> Offload | None:
        """The queue, the completion reader, the watcher and the webhook.

        Once per worker process, in the worker's event loop.
        """
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return self._offload
        self._loop = loop
        self._tasks = [loop.create_task(self._expire())]
        if self.redis_url or self.rabbitmq_url or self._make_backend:
            self._offload = Offload(self._backend())
            self._tasks.append(loop.create_task(self._watch()))
        if self._client is not None:
            self._tasks.append(loop.create_task(self._read_completions()))
        if self.webhook:
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(256)
            listener.setblocking(False)
            self._listener = listener
            self._tasks.append(loop.create_task(self._serve(listener)))
        at_drain(self._settle)
        return self._offload

    async def _serve(self, listener: socket.socket) -> None:
        server = await asyncio.start_server(self._answer, sock=listener)
        async with server:
            await server.serve_forever()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A completion posted by the service (HTTP/1.1, keep-alive)."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                now = time.monotonic_ns()
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                status = self._posted(body, now)
                writer.write(f"HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def _posted(self, body: bytes, now: int) -> str:
        try:
            posted = json.loads(body)
            job = str(posted["id"])
        except (ValueError, KeyError, TypeError):
            return "400 Bad Request"
        at = now
        finished = posted.get("finished_at") if isinstance(posted, dict) else None
        if isinstance(finished, int | float):
            at = min(now, int(float(finished) * 1e9) - (time.time_ns() - now))
        self._done(job, at)
        return "204 No Content"

    async def _settle(self) -> None:
        """At the end of the load: wait for the jobs still pending (the worker bounds it)."""
        self._drained = asyncio.Event()
        while self._waiting:
            self._drained.clear()
            await self._drained.wait()

    def _backend(self) -> QueueBackend:
        if self._make_backend is not None:
            return self._make_backend()
        if self.redis_url is not None:
            from redis.asyncio import Redis

            from redline.resilience.redis import RedisStreamQueue

            self._client = Redis.from_url(self.redis_url)
            return RedisStreamQueue(self._client, self.queue, prefix=self.prefix)
        from redline.resilience.rabbitmq import RabbitQueue

        assert self.rabbitmq_url is not None
        return RabbitQueue(self.rabbitmq_url, self.queue)

    def _expect(
        self, job_id: str, started_ns: int, future: asyncio.Future[float | None] | None
    ) -> None:
        seen = self._seen.pop(job_id, None)
        if seen is not None:  # done before its response was read: a fast worker
            seconds = self._record(seen - started_ns)
            if future is not None:
                future.set_result(seconds)
            return
        self._waiting[job_id] = (started_ns, future)

    def _record(self, latency_ns: int) -> float:
        seconds = max(latency_ns, 0) / 1e9
        self.latency.add(seconds * 1000)
        self.completed.add(1)
        return seconds

    def _done(self, job_id: str, at_ns: int) -> None:
        waiting = self._waiting.pop(job_id, None)
        if waiting is None:
            self._seen[job_id] = at_ns
            if len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
            return
        started, future = waiting
        seconds = self._record(at_ns - started)
        if future is not None and not future.done():
            future.set_result(seconds)
        if self._drained is not None and not self._waiting:
            self._drained.set()

    async def _read_completions(self) -> None:
        """XREAD the completion stream from now on.

        Ids of jobs this process did not make are remembered a while (a job may finish
        before the response that names it is read), then forgotten.
        """
        stream = f"{self.prefix}{self.queue}:completed"
        last = f"{time.time_ns() // 1_000_000}-0"
        while True:
            try:
                answer = await self._client.xread({stream: last}, count=1000, block=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker is away: say so, go on
                _log.warning("jobs: cannot read %s: %r", stream, exc)
                await asyncio.sleep(0.5)
                continue
            # the worker's own finish time, on this clock: redline's reading of the stream
            # adds nothing (another machine's clock skew would: then the reading time is
            # the better bound, and a finish "before" it is taken as now)
            now = time.monotonic_ns()
            offset = time.time_ns() - now
            for _, entries in answer or []:
                for entry_id, fields in entries:
                    last = entry_id
                    job = fields.get(b"id")
                    if job is None:
                        continue
                    finished = fields.get(b"finished_at")
                    at = now
                    if finished is not None:
                        with contextlib.suppress(ValueError):
                            at = min(now, int(float(finished) * 1e9) - offset)
                    self._done(job.decode(), at)

    async def _expire(self) -> None:
        """Jobs not done within the timeout count as timed out (and stop being waited for)."""
        while True:
            await asyncio.sleep(min(1.0, self.timeout_s / 4))
            cutoff = time.monotonic_ns() - int(self.timeout_s * 1e9)
            late = [job for job, (started, _) in self._waiting.items() if started < cutoff]
            for job in late:
                _, future = self._waiting.pop(job)
                self.timed_out.add(1)
                if future is not None and not future.done():
                    future.set_result(None)
            if self._drained is not None and not self._waiting:
                self._drained.set()

    async def _watch(self) -> None:
        """The queue's gauges, every ``watch_s``."""
        if self._offload is None:
            return
        while True:
            with contextlib.suppress(Exception):
                stats = await self._offload.stats()
                for gauge, value in stats.as_dict().items():
                    if value is None and gauge == "oldest_age_s" and not stats.depth:
                        value = 0.0  # empty: nothing waits
                    if value is not None:
                        self.gauges[gauge].set(float(value))
            await asyncio.sleep(self.watch_s)


def _status_done(response: Response) -> bool:
    if response.status != 200:
        return False
    with contextlib.suppress(ValueError):
        body = response.json()
        return isinstance(body, Mapping) and body.get("status") == "done"
    return False
