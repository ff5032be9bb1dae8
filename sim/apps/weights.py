"""Weight matrices from the user's files: ``.npy`` and ``.safetensors``, checked and widened to
float32 (for ``wafer run gemv``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.apps.errors import WorkloadError

__all__ = ["load_weights"]


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
    if not p.is_file():
        raise WorkloadError(f"weight file {p} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise WorkloadError(f"{p} is not a valid .npy file: {exc}") from None
        name = tensor or p.stem
        if tensor is not None and tensor != p.stem:
            raise WorkloadError(f"{p} is a .npy file with a single array; --tensor does not apply")
    elif suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            tensors = load_file(str(p))
        except (SafetensorError, OSError, ValueError, TypeError) as exc:
            raise WorkloadError(f"{p} is not a valid .safetensors file: {exc}") from None
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
        array, name = tensors[tensor], tensor
    else:
        raise WorkloadError(f"{p}: unsupported weight file type {suffix!r}; use .npy or "
                            f".safetensors")
    if array.ndim != 2:
        raise WorkloadError(f"tensor {name!r} has shape {tuple(array.shape)}: a GEMV needs a 2-D "
                            f"matrix")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype.name in ("bfloat16",)
            or "float8" in array.dtype.name):
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
    return values, name
