"""The run store: every run kept, in SQLite by default or PostgreSQL by URL.

with open_store() as store:                  # .redline/runs.db, or $REDLINE_STORE
    outcome = redline.run(plan, store=store, labels={"branch": "main"})  # recorded live
    for info in store.runs(plan=plan.name):
        ...
"""

from redline.core import RunMeta as RunMeta
from redline.core import RunOutcome as RunOutcome
from redline.core import StoreError as StoreError

from ._meta import collect_meta as collect_meta
from ._meta import parse_labels as parse_labels
from ._recorder import RunRecorder as RunRecorder
from ._records import Decision as Decision
from ._records import RunInfo as RunInfo
from ._records import StoredRun as StoredRun
from ._records import parse_time as parse_time
from ._schema import MIGRATIONS as MIGRATIONS
from ._schema import Migration as Migration
from ._store import DEFAULT_STORE as DEFAULT_STORE
from ._store import LOST as LOST
from ._store import RUNNING as RUNNING
from ._store import STORE_ENV as STORE_ENV
from ._store import RunStore as RunStore
from ._store import open_store as open_store
from ._store import store_location as store_location

__all__ = [
    "DEFAULT_STORE",
    "LOST",
    "MIGRATIONS",
    "RUNNING",
    "STORE_ENV",
    "Decision",
    "Migration",
    "RunInfo",
    "RunMeta",
    "RunOutcome",
    "RunRecorder",
    "RunStore",
    "StoreError",
    "StoredRun",
    "collect_meta",
    "open_store",
    "parse_labels",
    "parse_time",
    "store_location",
]
