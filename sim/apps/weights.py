"""Weights from the user's files, checked and widened to float32: one matrix from a ``.npy`` or
``.safetensors`` file (``wafer run gemv``), or a whole MLP from a ``.npz`` or ``.safetensors``
file (``wafer run mlp``)."""

from __future__ import annotations

import math
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from sim.apps.errors import WorkloadError

__all__ = ["load_weights", "load_mlp", "MLP_TENSOR_NAMES"]

#: Tensor names an MLP file may use for layer ``i``: ``W{i}`` / ``b{i}``, or ``{prefix}{i}.weight``
#: / ``{prefix}{i}.bias`` (PyTorch's ``nn.Sequential`` naming, e.g. ``layers.0.weight``).
MLP_TENSOR_NAMES = "W0, b0, W1, b1, ... or <prefix>0.weight, <prefix>0.bias, ..."
_WEIGHT = re.compile(r"^(?:W(\d+)|(.*?)(\d+)\.weight)$")
_BIAS = re.compile(r"^(?:b(\d+)|(.*?)(\d+)\.bias)$")


def _read_tensors(p: Path, kinds: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Every array of a ``.npz`` / ``.safetensors`` / ``.npy`` file (``kinds`` allowed), by name.

    Raises
    ------
    WorkloadError
        Missing file, unsupported suffix, or a malformed file.
    """
    if not p.is_file():
        raise WorkloadError(f"weight file {p} does not exist")
    suffix = p.suffix.lower()
    if suffix not in kinds:
        raise WorkloadError(f"{p}: unsupported weight file type {suffix!r}; use "
                            f"{' or '.join(kinds)}")
    try:
        if suffix == ".npy":
            with open(p, "rb") as fh:
                _check_npy_size(fh, p.stat().st_size, p.name)
            return {p.stem: np.load(p, allow_pickle=False)}
        if suffix == ".npz":
            with zipfile.ZipFile(p) as archive:
                for info in archive.infolist():
                    with archive.open(info) as fh:
                        _check_npy_size(fh, info.file_size, info.filename)
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
    except WorkloadError as exc:
        raise WorkloadError(f"{p} is not a valid {suffix} file: {exc}") from None
    # A corrupted archive can fail in the zip, zlib or npy layers with any of these.
    except (ValueError, OSError, EOFError, KeyError, NotImplementedError, RuntimeError,
            zipfile.BadZipFile, zlib.error, struct.error) as exc:
        raise WorkloadError(f"{p} is not a valid {suffix} file: {exc}") from None
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(p))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise WorkloadError(f"{p} is not a valid .safetensors file: {exc}") from None


def _check_npy_size(fh, stored_bytes: int, name: str) -> None:
    """Refuse an .npy stream whose header declares more data than it holds (a truncated or
    forged file), before anything is allocated.

    Raises
    ------
    WorkloadError
        If the header declares more bytes than the member holds.
    ValueError
        From numpy, for a malformed header.
    """
    version = np.lib.format.read_magic(fh)
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        return  # np.load checks what it reads
    shape, _, dtype = readers[version](fh)
    declared = math.prod(shape) * dtype.itemsize
    if declared > stored_bytes:
        raise WorkloadError(f"{name} declares a {' x '.join(map(str, shape))} {dtype} array "
                            f"({declared} bytes) but holds {stored_bytes} bytes")


def _checked(name: str, array: np.ndarray, ndim: int, what: str) -> np.ndarray:
    """A numeric, finite, non-empty ``ndim``-dimensional tensor as float32.

    Raises
    ------
    WorkloadError
        Naming the tensor and what is wrong with it.
    """
    if array.ndim != ndim:
        raise WorkloadError(f"tensor {name!r} has shape {tuple(array.shape)}: {what}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype.name in ("bfloat16",)
            or "float8" in array.dtype.name) or np.issubdtype(array.dtype, np.complexfloating):
        raise WorkloadError(f"tensor {name!r} has non-numeric dtype {array.dtype}")
    if array.size == 0:
        raise WorkloadError(f"tensor {name!r} is empty")
    wide = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(wide)):
        raise WorkloadError(f"tensor {name!r} contains NaN or infinite values")
    with np.errstate(over="ignore"):
        values = wide.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise WorkloadError(f"tensor {name!r} has values beyond the float32 range (max |value| "
                            f"{np.max(np.abs(wide)):.6g}); scale it down")
    return values


def load_mlp(path: str | Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The layers of an MLP from a ``.npz`` or ``.safetensors`` file.

    Layer ``i`` is the tensor named ``W{i}`` (or ``<prefix>{i}.weight``) of shape (M, K), the
    PyTorch ``nn.Linear`` layout ``y = W x``, with an optional bias ``b{i}`` (or
    ``<prefix>{i}.bias``) of shape (M,). Layers are numbered from 0 without gaps, and layer
    ``i``'s K must be layer ``i - 1``'s M. ReLU goes between layers (not after the last).

    Returns
    -------
    list of (np.ndarray of float32 (M, K), np.ndarray of float32 (M,) or None)

    Raises
    ------
    WorkloadError
        For a missing or malformed file, tensors that are not named as above (the message lists
        what the file holds and the names expected), a gap in the layer numbers, a wrong shape,
        dtype or value (NaN, inf, beyond float32), or layers that do not chain.
    """
    p = Path(path)
    tensors = _read_tensors(p, (".npz", ".safetensors"))
    listing = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()) or "none"
    weights, biases = {}, {}
    for name, array in tensors.items():
        w, b = _WEIGHT.match(name), _BIAS.match(name)
        if w:
            weights[int(w.group(1) or w.group(3))] = (name, array)
        elif b:
            biases[int(b.group(1) or b.group(3))] = (name, array)
        else:
            raise WorkloadError(f"{p}: tensor {name!r} is neither a layer's weight nor its bias "
                                f"(expected {MLP_TENSOR_NAMES}); the file holds: {listing}")
    if not weights:
        raise WorkloadError(f"{p} holds no layer weights (expected {MLP_TENSOR_NAMES}); it "
                            f"holds: {listing}")
    n = max(weights) + 1
    missing = [i for i in range(n) if i not in weights]
    if missing or any(i >= n for i in biases):
        raise WorkloadError(f"{p}: layers must be numbered 0..{n - 1} without gaps, each bias "
                            f"with its weight; missing weights of layers {missing or 'none'}, "
                            f"biases without a weight: "
                            f"{[i for i in biases if i >= n] or 'none'}")
    layers = []
    for i in range(n):
        wname, W = weights[i]
        W = _checked(wname, W, 2, "a layer's weight must be a 2-D (outputs x inputs) matrix")
        b = None
        if i in biases:
            bname, b = biases[i]
            b = _checked(bname, b, 1, "a bias must be 1-D")
            if b.shape != (W.shape[0],):
                raise WorkloadError(f"bias {bname!r} has {b.shape[0]} values but layer {i} has "
                                    f"{W.shape[0]} outputs")
        if layers and W.shape[1] != layers[-1][0].shape[0]:
            raise WorkloadError(f"layers do not chain: {wname!r} takes {W.shape[1]} inputs but "
                                f"layer {i - 1} gives {layers[-1][0].shape[0]} outputs")
        layers.append((W, b))
    return layers


def load_weights(path: str | Path, tensor: str | None = None) -> tuple[np.ndarray, str]:
    """Load a 2-D weight matrix from a ``.npy`` or ``.safetensors`` file.

    Parameters
    ----------
    path : path
    tensor : str, optional
        Tensor name in a ``.safetensors`` file; may be omitted if the file holds exactly one 2-D
        tensor.

    Returns
    -------
    (np.ndarray of float32, shape (M, K), str)
        The matrix and its name.

    Raises
    ------
    WorkloadError
        Missing or malformed file, unknown tensor (the message lists the tensors), a tensor
        that is not 2-D or not numeric.
    """
    p = Path(path)
    tensors = _read_tensors(p, (".npy", ".safetensors"))
    if p.suffix.lower() == ".npy":
        if tensor is not None and tensor != p.stem:
            raise WorkloadError(f"{p} is a .npy file with a single array; --tensor does not apply")
        name = p.stem
    else:
        listing = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()) or "none"
        if tensor is None:
            two_d = [k for k, v in tensors.items() if v.ndim == 2]
            if not two_d:
                raise WorkloadError(f"{p} holds no 2-D tensor (it holds: {listing}); a GEMV "
                                    f"needs a 2-D weight matrix")
            if len(two_d) > 1:
                raise WorkloadError(f"{p} holds several 2-D tensors ({listing}): choose one "
                                    f"with --tensor NAME")
            tensor = two_d[0]
        if tensor not in tensors:
            raise WorkloadError(f"{p} has no tensor {tensor!r}; it holds: {listing}")
        name = tensor
    values = _checked(name, tensors[name], 2, "a GEMV needs a 2-D matrix")
    return values, name
