"""Turning a plan's requests into bytes: precompiled when static, rendered when dynamic."""

from __future__ import annotations

import math
from functools import reduce

from redline.core import DataExhaustedError
from redline.http import encode_body, encode_request
from redline.plan import Plan, RenderContext, RequestSpec, encode_message

__all__ = ["RequestMix", "host_header", "weighted_cycle"]


def host_header(plan: Plan) -> str:
    """The Host header for the plan's target (the port only when not the default)."""
    scheme, host, port = plan.origin
    default_port = 443 if scheme == "https" else 80
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port == default_port else f"{host}:{port}"


def weighted_cycle(weights: list[int]) -> list[int]:
    """A smooth weighted round-robin order of indices (nginx's algorithm).

    Over one cycle each index appears exactly ``weight / gcd`` times, spread evenly.
    """
    divisor = reduce(math.gcd, weights)
    reduced = [w // divisor for w in weights]
    total = sum(reduced)
    current = [0] * len(reduced)
    order = []
    for _ in range(total):
        for i, w in enumerate(reduced):
            current[i] += w
        best = max(range(len(reduced)), key=current.__getitem__)
        current[best] -= total
        order.append(best)
    return order


class RequestMix:
    """Picks the next request in weighted order and returns its bytes."""

    __slots__ = (
        "_accept", "_base", "_ctx", "_cycle", "_host", "_position", "_request_encoding", "_specs",
    "_static", "fixed", "names",
    )  # fmt: skip

    def __init__(self, plan: Plan, ctx: RenderContext, *, base: int = 0) -> None:
        """Precompile ``plan``'s static requests; dynamic ones render with ``ctx``.

        Endpoint indexes start at ``base`` (a scenario's requests after the others').
        """
        self._base = base
        self._host = host_header(plan)
        compression = plan.compression
        self._accept = ", ".join(compression.accept) if compression else ""
        self._request_encoding = compression.request if compression else None
        self._specs = plan.requests
        self._ctx = ctx
        self.names = [r.name for r in plan.requests]
        self._static = [self._encode(r) if r.static else None for r in plan.requests]
        self._cycle = weighted_cycle([r.weight for r in plan.requests]) if plan.requests else []
        self._position = ctx.offset
        only = self._static[0] if len(self._static) == 1 else None
        self.fixed: tuple[int, bytes] | None = (base, only) if only else None
        """``(endpoint, bytes)`` when every request is the same precompiled one, else None."""

    def _encode(self, spec: RequestSpec) -> bytes:
        ctx = self._ctx
        if spec.multipart:
            body: bytes | None = spec.render_multipart(ctx)
        elif spec.grpc is not None:
            body = encode_message(spec.grpc, spec.body.render(ctx) if spec.body else "{}")
        else:
            body = spec.body.render(ctx).encode() if spec.body is not None else None
        headers = [(k, v.render(ctx)) for k, v in spec.headers]
        if self._accept and not any(k.lower() == "accept-encoding" for k, _ in headers):
            headers.append(("Accept-Encoding", self._accept))
        if body and self._request_encoding and spec.grpc is None:
            body = encode_body(self._request_encoding, body)
            headers.append(("Content-Encoding", self._request_encoding))
        return encode_request(
            spec.method, spec.path.render(ctx), host=self._host, headers=headers, body=body
        )

    def next(self) -> tuple[int, bytes | None]:
        """Return ``(endpoint index, request bytes)`` for the next request.

        The bytes are None when a ``unique`` data source has run out of rows.
        """
        cycle = self._cycle
        index = cycle[self._position % len(cycle)]
        self._position += 1
        data = self._static[index]
        if data is None:
            try:
                data = self._encode(self._specs[index])
            except DataExhaustedError:
                return self._base + index, None
        return self._base + index, data
