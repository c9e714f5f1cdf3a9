"""The kernel's proc connector: fork, exec and exit of every process on the machine, in order.

A netlink socket (``NETLINK_CONNECTOR``, needs CAP_NET_ADMIN) on which the kernel reports each fork
(parent and child), exec and exit, with its CLOCK_MONOTONIC time. The fanotify watcher uses it to
know which processes belong to a job, and to time and name them.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterator

_NLMSG = struct.Struct("=IHHII")
_CNMSG = struct.Struct("=IIIIHH")  # cb_id idx, val, seq, ack, len, flags
_PROC_EV = struct.Struct("=IIQ")  # what, cpu, timestamp_ns (CLOCK_MONOTONIC)
NETLINK_CONNECTOR, CN_IDX_PROC, CN_VAL_PROC = 11, 1, 1
PROC_CN_MCAST_LISTEN = 1
PROC_EVENT_FORK, PROC_EVENT_EXEC, PROC_EVENT_EXIT = 0x1, 0x2, 0x80000000
NLMSG_DONE = 3


def open_proc_connector() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    try:
        sock.bind((os.getpid() ^ (threading.get_ident() & 0x7FFF0000), CN_IDX_PROC))
        payload = struct.pack("=I", PROC_CN_MCAST_LISTEN)
        cn = _CNMSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
        sock.send(_NLMSG.pack(_NLMSG.size + len(cn), NLMSG_DONE, 0, 0, os.getpid()) + cn)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def proc_events(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(what, pid_a, pid_b) from one netlink datagram: fork → (parent tgid, child tgid), exit → (tgid, 0)."""
    for what, a, b, _ts in timed_proc_events(data):
        if what != PROC_EVENT_EXEC:
            yield what, a, b


def timed_proc_events(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(what, pid_a, pid_b, monotonic ns) from one netlink datagram: fork → (parent tgid, child tgid),
    exec and exit → (tgid, 0)."""
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length = _NLMSG.unpack_from(data, offset)[0]
        if length < _NLMSG.size:
            return
        body = offset + _NLMSG.size + _CNMSG.size
        if body + _PROC_EV.size <= len(data):
            what, _cpu, ts = _PROC_EV.unpack_from(data, body)
            ev = body + _PROC_EV.size
            if what == PROC_EVENT_FORK and ev + 16 <= len(data):
                _ppid, ptgid, _cpid, ctgid = struct.unpack_from("=iiii", data, ev)
                if ptgid != ctgid:  # a new process, not a new thread
                    yield what, ptgid, ctgid, ts
            elif what in (PROC_EVENT_EXIT, PROC_EVENT_EXEC) and ev + 8 <= len(data):
                pid, tgid = struct.unpack_from("=ii", data, ev)
                if pid == tgid:
                    yield what, tgid, 0, ts
        offset += (length + 3) & ~3
