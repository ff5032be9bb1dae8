"""pytest options shared by the RTL benches."""

import os

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--sim",
        default=None,
        choices=("verilator", "icarus"),
        help="simulator for the cocotb benches (default: $WAFER_SIM or verilator)",
    )
    parser.addoption("--waves", action="store_true", help="record waveforms of the RTL benches")


@pytest.fixture(scope="session")
def sim(request):
    """The simulator the cocotb benches run on."""
    choice = request.config.getoption("--sim") or os.environ.get("WAFER_SIM", "verilator")
    from sim.tb.harness import ToolMissingError, prepare_simulator

    try:
        prepare_simulator(choice)
    except ToolMissingError as exc:
        pytest.skip(str(exc))
    return choice


@pytest.fixture(scope="session")
def waves(request):
    return bool(request.config.getoption("--waves"))
