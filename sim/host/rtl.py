"""The RTL backend of the host driver: the fabric's Verilog simulated with cocotb in a simulator
process that serves :mod:`sim.tb.fabric_server` and talks to the driver over a Unix socket."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from dataclasses import asdict

from fabric.array import FabricParams, emit_verilog
from sim.host.errors import DriverError
from sim.host.wire import recv_message, send_message
from sim.tb.harness import run_cocotb

__all__ = ["RTLBackend"]


class RTLBackend:
    """Runs the fabric RTL in a simulator process serving :mod:`sim.tb.fabric_server`.

    Parameters
    ----------
    params : FabricParams
    sim : str or None
        Simulator (default :func:`sim.tb.harness.default_simulator`).
    waves : bool
        Record a waveform.
    optimize : bool
        Build the simulator with C++ optimisation.
    build_timeout_s : float
        Seconds to wait for the simulator to build and connect.

    Raises
    ------
    DriverError
        If the simulation does not start (its build failed, or it took too long).
    """

    def __init__(self, params: FabricParams, *, sim: str | None, waves: bool, optimize: bool,
                 build_timeout_s: float = 1800):
        self.params = params
        self._tmp = tempfile.TemporaryDirectory(prefix="wafer-driver-")
        path = os.path.join(self._tmp.name, "driver.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(1)
        self._listener.settimeout(1.0)
        self._error: BaseException | None = None
        verilog = emit_verilog(params)
        env = {"WAFER_DRIVER_SOCKET": path, "WAFER_FABRIC": json.dumps(asdict(params))}

        def target():
            try:
                run_cocotb(verilog, toplevel=params.name(), test_module="sim.tb.fabric_server",
                           sim=sim, waves=waves, optimize=optimize, extra_env=env)
            except BaseException as exc:  # reported to the caller
                self._error = exc

        self._thread = threading.Thread(target=target, name="wafer-rtl", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + build_timeout_s
        self._sock = None
        while self._sock is None:
            try:
                self._sock, _ = self._listener.accept()
            except TimeoutError:
                if not self._thread.is_alive():
                    raise DriverError(f"the RTL simulation did not start: {self._error}") \
                        from self._error
                if time.monotonic() > deadline:
                    raise DriverError(f"the RTL simulation did not start within "
                                      f"{build_timeout_s:.0f} s") from None

    def _call(self, command: str, args=None):
        try:
            send_message(self._sock, (command, args))
            status, value = recv_message(self._sock, "the simulator")
        except (OSError, ConnectionError) as exc:
            self._thread.join(timeout=30)
            raise DriverError(f"the RTL simulation stopped: {self._error or exc}") from exc
        if status != "ok":
            raise DriverError(f"the RTL simulation failed on {command!r}: {value}")
        return value

    def chain(self, words: list[int], answers: int) -> list[int]:
        """Push configuration words through the simulated chain; the words that came out."""
        return self._call("chain", ([int(w) & 0xFFFF_FFFF for w in words], answers))

    def send(self, port: str, wavelets) -> None:
        """Hold wavelets for host port ``port``; they enter at the next run."""
        self._call("send", (port, list(wavelets)))

    def run(self, max_cycles: int, expect: dict[str, int]) -> dict:
        """Run the simulation (see :mod:`sim.tb.fabric_server`, command ``run``)."""
        return self._call("run", (max_cycles, expect))

    def set_faults(self, modes) -> None:
        """Set the fault-injection mode of every physical tile."""
        self._call("faults", list(modes))

    def close(self) -> None:
        """Stop the simulator and wait for it.

        Raises
        ------
        DriverError
            If the simulation ended with an error.
        """
        if self._sock is not None:
            try:
                self._call("quit")
            except DriverError:
                pass
            self._sock.close()
            self._sock = None
        self._thread.join(timeout=60)
        self._listener.close()
        self._tmp.cleanup()
        if self._error is not None:
            raise DriverError(f"the RTL simulation ended with an error: {self._error}")
