"""One deadline for a pipeline: nested ones only shorten it; it crosses to downstreams."""

from __future__ import annotations

import asyncio

import pytest

from redline.resilience import (
    DEADLINE_HEADER,
    DeadlineExceeded,
    deadline,
    deadline_from_headers,
    headers,
    remaining,
    within_deadline,
)


def test_a_nested_deadline_cannot_extend_the_outer_one() -> None:
    async def main() -> tuple[float | None, float | None, float | None]:
        assert remaining() is None
        async with deadline(1.0):
            outer = remaining()
            async with deadline(60.0):
                inner = remaining()
            async with deadline(0.2):
                shorter = remaining()
        return outer, inner, shorter

    outer, inner, shorter = asyncio.run(main())
    assert outer is not None and inner is not None and shorter is not None  # noqa: PT018
    assert inner <= outer <= 1.0
    assert shorter <= 0.2


def test_the_whole_pipeline_gives_up_at_the_deadline() -> None:
    steps: list[str] = []

    async def step(name: str) -> None:
        await asyncio.sleep(0.15)
        steps.append(name)

    took: list[float] = []

    async def main() -> None:
        started = asyncio.get_running_loop().time()
        try:
            async with deadline(0.4):
                for name in ("a", "b", "c", "d"):
                    await within_deadline(step(name))
        finally:
            took.append(asyncio.get_running_loop().time() - started)

    with pytest.raises(DeadlineExceeded):
        asyncio.run(main())
    # it gave up at the deadline, in a step, not after the four steps (0.6 s) were done;
    # how many steps fit before it depends on how busy the machine is, at most two
    assert 0.4 - 0.005 <= took[0] < 0.6
    assert steps in (["a"], ["a", "b"])


def test_the_header_carries_the_time_left_to_a_downstream() -> None:
    async def main() -> tuple[dict[str, str], float | None]:
        async with deadline(2.0):
            outgoing = headers()
        async with deadline_from_headers({DEADLINE_HEADER.lower(): outgoing[DEADLINE_HEADER]}):
            return outgoing, remaining()

    outgoing, downstream = asyncio.run(main())
    assert 1000 < int(outgoing[DEADLINE_HEADER]) <= 2000
    assert downstream is not None
    assert downstream <= 2.0
    assert headers() == {}


def test_a_bad_header_falls_back_to_the_default() -> None:
    async def main() -> float | None:
        async with deadline_from_headers({DEADLINE_HEADER: "soon"}, default=5.0):
            return remaining()

    left = asyncio.run(main())
    assert left is not None
    assert 4.0 < left <= 5.0
