"""Messages between the host driver and the simulator process it starts, over a Unix socket.

A message is one Python object: an 8-byte little-endian length, then that many bytes of its
pickle. :class:`sim.host.rtl.RTLBackend` sends ``(command, arguments)`` and the simulator's
:mod:`sim.tb.fabric_server` answers ``("ok", value)`` or ``("error", message)``.
"""

from __future__ import annotations

import pickle
import socket
import struct

__all__ = ["send_message", "recv_message"]

_LENGTH = struct.Struct("<Q")


def send_message(sock: socket.socket, obj) -> None:
    """Send one object."""
    data = pickle.dumps(obj)
    sock.sendall(_LENGTH.pack(len(data)) + data)


def recv_message(sock: socket.socket, peer: str):
    """Receive one object.

    Raises
    ------
    ConnectionError
        If the other side (``peer``, named in the message) closes the connection.
    """
    (length,) = _LENGTH.unpack(_recv_exact(sock, _LENGTH.size, peer))
    return pickle.loads(_recv_exact(sock, length, peer))


def _recv_exact(sock: socket.socket, n: int, peer: str) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"{peer} closed the connection")
        buf += chunk
    return bytes(buf)
