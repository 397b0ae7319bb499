"""Failure on purpose: a TCP fault proxy with Toxiproxy's toxics and API, in-process or served.

    async with FaultProxy(port=None) as faults:
        proxy = await faults.create("payments", "127.0.0.1:0", "127.0.0.1:9000")
        proxy.add_toxic({"type": "latency", "attributes": {"latency": 300}})
        ...  # connect to proxy.listen

``redline proxy`` serves the same on 127.0.0.1:8474 for Toxiproxy's clients.

Host faults (:func:`host_fault`: processes, cgroups, noisy neighbours, network below L7,
disks) are recorded in a :class:`Ledger` before they are made, undone by the schedule, by
a watchdog process after a crash, or by ``redline faults clean``.
"""

from ._cgroups import CGROUP_KNOBS as CGROUP_KNOBS
from ._cgroups import CgroupHost as CgroupHost
from ._cgroups import ControlGroup as ControlGroup
from ._dns import DNS_FAULTS as DNS_FAULTS
from ._dns import DnsServer as DnsServer
from ._dns import resolv_conf_argv as resolv_conf_argv
from ._errors import FaultError as FaultError
from ._failover import FailoverReport as FailoverReport
from ._failover import WriteChecker as WriteChecker
from ._failover import WriteStore as WriteStore
from ._failover import measure_failover as measure_failover
from ._failover import postgres_store as postgres_store
from ._failover import redis_sentinel_store as redis_sentinel_store
from ._host import HOST_FAULT_KINDS as HOST_FAULT_KINDS
from ._host import HostContext as HostContext
from ._host import HostFault as HostFault
from ._host import HostFaultError as HostFaultError
from ._host import Served as Served
from ._host import host_fault as host_fault
from ._host import netem_available as netem_available
from ._ledger import Ledger as Ledger
from ._ledger import LedgerEntry as LedgerEntry
from ._ledger import default_ledger_dir as default_ledger_dir
from ._proxy import Proxy as Proxy
from ._proxy import ProxyError as ProxyError
from ._schedule import FaultSchedule as FaultSchedule
from ._schedule import LocalProxies as LocalProxies
from ._schedule import ProxyControl as ProxyControl
from ._schedule import RemoteProxies as RemoteProxies
from ._schedule import ScheduledFault as ScheduledFault
from ._server import API_VERSION as API_VERSION
from ._server import FaultProxy as FaultProxy
from ._toxics import STREAMS as STREAMS
from ._toxics import TOXIC_TYPES as TOXIC_TYPES
from ._toxics import Toxic as Toxic
from ._toxics import ToxicError as ToxicError

__all__ = [
    "API_VERSION",
    "CGROUP_KNOBS",
    "DNS_FAULTS",
    "HOST_FAULT_KINDS",
    "STREAMS",
    "TOXIC_TYPES",
    "CgroupHost",
    "ControlGroup",
    "DnsServer",
    "FailoverReport",
    "FaultError",
    "FaultProxy",
    "FaultSchedule",
    "HostContext",
    "HostFault",
    "HostFaultError",
    "Ledger",
    "LedgerEntry",
    "LocalProxies",
    "Proxy",
    "ProxyControl",
    "ProxyError",
    "RemoteProxies",
    "ScheduledFault",
    "Served",
    "Toxic",
    "ToxicError",
    "WriteChecker",
    "WriteStore",
    "default_ledger_dir",
    "host_fault",
    "measure_failover",
    "netem_available",
    "postgres_store",
    "redis_sentinel_store",
    "resolv_conf_argv",
]
