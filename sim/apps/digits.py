"""The digits MLP of the main job: a small classifier trained (once, cached) on scikit-learn's
bundled 8 x 8 digit images."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

__all__ = ["train_digits_mlp"]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "openwafer"


def train_digits_mlp(hidden: int | tuple[int, ...] = 32, seed: int = 0,
                     cache: Path | None = None):
    """Train (or load from the cache) an MLP classifier on scikit-learn's bundled digits.

    The data are the 1,797 8 x 8 digit images bundled with scikit-learn (no download), scaled to
    [0, 1]; 80 % train, 20 % (360 images) held out. ``MLPClassifier(hidden_layer_sizes=hidden,
    activation="relu", random_state=seed)``; ``hidden`` is one size or a tuple of hidden layer
    sizes (e.g. ``(128, 128)`` for a 64-128-128-10 MLP).

    Returns
    -------
    dict
        ``layers`` (list of (W of shape (out, in), b) float32), ``x_test`` (float32,
        (n, 64)), ``y_test`` (int, (n,)), ``train_accuracy``.
    """
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    sizes = (hidden,) if isinstance(hidden, int) else tuple(int(h) for h in hidden)
    # (a single hidden layer keeps the key it always had, so cached models stay valid)
    tag = sizes[0] if len(sizes) == 1 else list(sizes)
    key = hashlib.sha256(json.dumps([tag, seed, sklearn.__version__]).encode()).hexdigest()[:12]
    path = (cache or _cache_dir()) / f"mlp_digits_{key}.npz"
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.2, random_state=seed, stratify=digits.target)
    n = len(sizes) + 1
    if path.exists():
        z = np.load(path)
        layers = [(z[f"W{i + 1}"], z[f"b{i + 1}"]) for i in range(n)]
        train_accuracy = float(z["train_accuracy"])
    else:
        clf = MLPClassifier(hidden_layer_sizes=sizes, activation="relu", max_iter=600,
                            random_state=seed)
        clf.fit(x_train, y_train)
        layers = [(clf.coefs_[i].T.astype(np.float32), clf.intercepts_[i].astype(np.float32))
                  for i in range(n)]
        train_accuracy = float(clf.score(x_train, y_train))
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{kind}{i + 1}": t for i, (W, b) in enumerate(layers)
                  for kind, t in (("W", W), ("b", b))}
        np.savez(path, train_accuracy=train_accuracy, **arrays)
    return {"layers": layers, "x_test": x_test, "y_test": y_test,
            "train_accuracy": train_accuracy, "cache": str(path)}
