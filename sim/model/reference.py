"""numpy references of the fabric's kernels in their rounding order, from the specification
alone: a GEMV (:func:`gemv`) and the row broadcast-reduce switch kernel (:func:`row_sums`).

Independent of the mapper (:mod:`sim.toolchain.mapper`) and of the golden model's number
formats (:mod:`sim.model.formats`): weights are rounded with ``ml_dtypes`` and the arithmetic is
numpy float32, whose every operation is an IEEE binary32 operation with round-to-nearest-even
(subnormals kept). The mapper's layout of a GEMV on ``R x C`` PEs (docs/architecture.md,
``sim.toolchain.mapper``) fixes the order:

* ``K`` is cut into ``C`` chunks of ``Kc = ceil(K / C)`` inputs, the last padded with zero
  weights and zero inputs; the PE of column ``c`` computes, per output, ``p = round(round(w x)
  + p)`` over its chunk's ``Kc`` steps in order, from ``p = +0`` (padding steps included: they
  turn a ``-0`` into ``+0``);
* the partial sums are added west to east, ``s = p_0``, ``s = round(s + p_c)``;
* then ``s = round(s + b)`` if there is a bias, and ``max(s, +0)`` if there is a ReLU.

NaN results are not compared (the PE returns the canonical NaN); weights must be finite in the
weight format.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

__all__ = ["WEIGHT_TYPES", "gemv", "row_sums"]

#: numpy types of the weight formats (by ``hdl.formats.Format`` name, lower case).
WEIGHT_TYPES = {
    "fp32": np.float32,
    "bf16": ml_dtypes.bfloat16,
    "fp16": np.float16,
    "e4m3": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
}


def gemv(W, x, weight_format: str, cols: int, bias=None, relu: bool = False) -> np.ndarray:
    """``W @ x`` (+ bias, ReLU) as a fabric with ``cols`` PE columns computes it.

    Parameters
    ----------
    W : array of shape (M, K)
        Weights (any float type; rounded to ``weight_format`` with round-to-nearest-even).
    x : array of shape (K,)
        fp32 activations.
    weight_format : str
        ``"fp32"``, ``"bf16"``, ``"fp16"``, ``"e4m3"`` or ``"e5m2"``.
    cols : int
        PE columns the inputs are split over.
    bias : array of shape (M,), optional
        fp32 bias.
    relu : bool

    Returns
    -------
    np.ndarray of uint32, shape (M,)
        The binary32 bit patterns of the results.

    Raises
    ------
    ValueError
        For an unknown format or shapes that do not match.
    """
    if weight_format not in WEIGHT_TYPES:
        raise ValueError(f"weight_format must be one of {', '.join(WEIGHT_TYPES)}, "
                         f"not {weight_format!r}")
    W = np.asarray(W, dtype=np.float32)
    x = np.asarray(x, dtype=np.float32)
    if W.ndim != 2 or x.shape != (W.shape[1],):
        raise ValueError(f"W must be (M, K) and x (K,), not {W.shape} and {x.shape}")
    M, K = W.shape
    kc = math.ceil(K / cols)
    w = W.astype(WEIGHT_TYPES[weight_format]).astype(np.float32)
    wp = np.zeros((M, cols * kc), dtype=np.float32)
    wp[:, :K] = w
    xp = np.zeros(cols * kc, dtype=np.float32)
    xp[:K] = x
    with np.errstate(all="ignore"):
        s = None
        for c in range(cols):
            p = np.zeros(M, dtype=np.float32)
            for k in range(c * kc, (c + 1) * kc):
                p = (wp[:, k] * xp[k]).astype(np.float32) + p
            s = p if s is None else (s + p).astype(np.float32)
        if bias is not None:
            s = (s + np.asarray(bias, dtype=np.float32)).astype(np.float32)
        if relu:
            s = np.where(s > 0, s, np.float32(0)).astype(np.float32)
    return s.view(np.uint32)


def row_sums(x, w) -> np.ndarray:
    """The answer of the broadcast-reduce kernel (:func:`sim.toolchain.kernels.broadcast_reduce`)
    from its definition: per row, ``p_0 + (p_1 + (... + p_{n-1}))`` with ``p_j = x * w_j``,
    every operation rounded to fp32.

    Parameters
    ----------
    x : array of shape (rows, length)
    w : array of shape (rows, cols, length)

    Returns
    -------
    np.ndarray of float32, shape (rows, length)
    """
    p = (np.asarray(x, np.float32)[:, None, :] * np.asarray(w, np.float32)).astype(np.float32)
    acc = p[:, -1]
    for j in range(p.shape[1] - 2, -1, -1):
        acc = (p[:, j] + acc).astype(np.float32)
    return acc
