"""Non-negative matrix factorization of activation samples (scikit-learn's NMF, not our own).

Neuron groups (Olah et al. 2018, "Building Blocks") and concept atoms both factor a table of
activation vectors (positions × channels) into a few non-negative parts: ``X ≈ W H``, each row
of ``H`` a direction in channel space, ``W`` how much of each a position holds. Lucid factors
ReLU outputs; many layers (lite0's block outputs, a transformer's residual stream) are signed,
and NMF of a signed table is undefined. A signed table is therefore split into its positive
and negative parts side by side, ``[relu(X), relu(-X)]``, and each part's direction is read
back as ``H⁺ − H⁻``: nothing is clipped away, and a non-negative table is factored as it is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from .errors import FeaturevisError


@dataclass
class Factors:
    """``weights`` (M×k) × ``parts`` (k×C', C' = C or 2C when split) ≈ the (split) samples."""

    weights: torch.Tensor  # M×k, >= 0
    parts: torch.Tensor  # k×C' as fitted
    directions: torch.Tensor  # k×C: each part as a direction in the layer's own channel space
    split: bool  # the samples were signed and factored as [relu(X), relu(-X)]
    error: float  # ||X − W H||_F / ||X||_F on the (split) table
    model: Any  # the fitted sklearn NMF, for transform()

    @property
    def k(self) -> int:
        return len(self.parts)

    def transform(self, samples: torch.Tensor) -> torch.Tensor:
        """The weights (M×k) of new samples on these parts (the parts stay fixed)."""
        x = _table(samples, self.split)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning on a short solve
            return torch.from_numpy(self.model.transform(x.numpy())).float()


def _sklearn_nmf():
    try:
        from sklearn.decomposition import NMF
    except ImportError as e:
        raise FeaturevisError("NMF needs scikit-learn: pip install 'featurevis[explain]'") from e
    return NMF


def _table(samples: torch.Tensor, split: bool) -> torch.Tensor:
    x = samples.detach().float().cpu().reshape(len(samples), -1)
    return torch.cat([x.clamp_min(0), (-x).clamp_min(0)], 1) if split else x.clamp_min(0)


def nmf(samples: torch.Tensor, k: int, *, seed: int = 0, max_iter: int = 500, split: bool | None = None) -> Factors:
    """Factor ``samples`` (M×C activation vectors) into ``k`` non-negative parts.

    Args:
        split: factor ``[relu(X), relu(-X)]`` (default: when any sample is negative).
    Raises:
        FeaturevisError: ``k`` is not in 1..min(M, C), or the samples are not finite.
    """
    if samples.dim() != 2 or not len(samples):
        raise FeaturevisError(f"NMF needs a table of samples × channels, not shape {tuple(samples.shape)}")
    if not torch.isfinite(samples).all():
        raise FeaturevisError("the activations to factor are not all finite numbers")
    m, c = samples.shape
    if not 1 <= k <= min(m, c):
        raise FeaturevisError(f"number of groups must be 1..{min(m, c)} for {m} samples of {c} channels, not {k}")
    split = bool((samples < 0).any()) if split is None else split
    x = _table(samples, split)
    scale = float(x.norm())
    if scale == 0:
        raise FeaturevisError("the activations to factor are all zero: nothing to group")
    model = _sklearn_nmf()(n_components=k, init="nndsvda", max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: the fit is still the best found in max_iter
        w = torch.from_numpy(model.fit_transform(x.numpy())).float()
    h = torch.from_numpy(model.components_).float()
    directions = h[:, :c] - h[:, c:] if split else h
    error = float((x - w @ h).norm()) / scale
    return Factors(w, h, directions, split, error, model)
