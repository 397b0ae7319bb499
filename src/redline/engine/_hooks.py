"""A Python plan's ``setup()`` and ``teardown()``, run once around the load.

``setup(session)`` runs before the workers start (to create accounts or fetch a token,
say); what it returns reaches every scenario as ``session.shared``. ``teardown(session,
shared)`` runs after the load. Both may be plain or async functions and may take fewer
parameters. Their requests are not measured.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
import traceback
from typing import Any

from redline.core import RunError
from redline.plan import Plan, import_plan_module

from ._recorder import Recorder
from ._requests import host_header
from ._session import Session, SessionRuntime
from ._worker import pool_options

__all__ = ["run_hook"]


def run_hook(plan: Plan, name: str, shared: Any = None) -> Any:
    """Run the plan module's ``setup`` or ``teardown`` and return its result.

    Raises:
        RunError: the hook failed, or setup returned what cannot reach the workers.
    """
    assert plan.module is not None
    function = getattr(import_plan_module(plan.module), name)
    wanted = 1 if name == "setup" else 2
    parameters = len(inspect.signature(function).parameters)
    if parameters > wanted:
        expected = "(session)" if name == "setup" else "(session, shared)"
        raise RunError(f"{name}() takes at most {wanted} parameters: {name}{expected}")

    async def main() -> Any:
        runtime = SessionRuntime(
            pool_options(plan),
            host_header=host_header(plan),
            recorder=Recorder([]),
            data=plan.data,
            shared=shared,
        )
        try:
            result = function(*(Session(runtime), shared)[:parameters])
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            await runtime.aclose()

    try:
        result = asyncio.run(main())
    except Exception as exc:  # whatever the plan's own code raised: reported, with cause
        raise RunError(f"{name}() failed:\n{''.join(traceback.format_exception(exc))}") from exc
    if name == "setup":
        try:
            pickle.dumps(result)
        except Exception as exc:  # pickle raises many kinds; reported, with cause
            raise RunError(f"setup() returned a value the workers cannot receive: {exc}") from exc
    return result
