"""Image parameterizations: modules with no input that return a batch of RGB images in [0, 1].

What is optimized changes what gradient descent finds. Pixels give high-frequency noise; a
Fourier basis scaled by 1/f with decorrelated colour (Olah et al. 2017) whitens the gradient so
low frequencies and natural colours are as easy to change as fine detail.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import FeaturevisError

# Square root of ImageNet's RGB colour covariance, via SVD (the constant Lucid publishes).
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_CORRELATION = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


def _on_colour(t: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` applied to the first three channels; the others pass unchanged.

    The decorrelation is ImageNet's RGB covariance, a 3-channel constant: a 1- or 2-channel
    image has no colour to decorrelate (its channels are left as they are), and an image of 4
    or more channels is read as RGB followed by other measurements (depth, infrared...) whose
    correlation with colour nobody measured, so those are drawn independently.
    """
    if t.shape[1] < 3:
        return t
    rgb = torch.einsum("ij,bjhw->bihw", matrix.to(t), t[:, :3])
    return rgb if t.shape[1] == 3 else torch.cat([rgb, t[:, 3:]], 1)


def decorrelated_to_rgb(t: torch.Tensor) -> torch.Tensor:
    """Map a ``B×C×H×W`` tensor from the decorrelated colour basis to RGB (still unbounded);
    only the first three channels are colour (see :func:`_on_colour`)."""
    return _on_colour(t, COLOR_CORRELATION)


def rgb_to_decorrelated(t: torch.Tensor) -> torch.Tensor:
    return _on_colour(t, torch.linalg.inv(COLOR_CORRELATION))


def _to_unit(t: torch.Tensor, squash: str) -> torch.Tensor:
    if squash == "sigmoid":
        return torch.sigmoid(t)
    if squash == "clamp":
        # Clamp with a straight-through gradient, so saturated pixels can still come back.
        return t + (t.clamp(0, 1) - t).detach()
    raise ValueError(f"squash must be 'sigmoid' or 'clamp', not {squash!r}")


def _inverse_unit(x: torch.Tensor, squash: str) -> torch.Tensor:
    if squash == "sigmoid":
        x = x.clamp(1e-3, 1 - 1e-3)
        return torch.log(x / (1 - x))
    return x


class Parameterization(nn.Module):
    """Base: ``forward()`` returns ``B×C×H×W`` images in [0, 1] (``C`` = the model's channels, 3 by default)."""

    batch: int
    size: tuple[int, int]
    #: Whether :meth:`render_at` can draw the same images at another resolution.
    resolution_independent: bool = False
    #: Adam learning rate ``render`` uses unless told otherwise.
    default_lr: float = 0.05

    def render_at(self, size: int | tuple[int, int]) -> torch.Tensor:
        """The images at another resolution; only resolution-independent kinds (``cppn``) can."""
        raise FeaturevisError(f"{type(self).__name__} images exist at one size only; render with param='cppn'")

    def images_and_extras(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The images and any named extra tensors the objective may read with them.

        :func:`~featurevis.core.engine.optimize` calls this instead of ``forward()`` and hands
        the extras to the objective among the activations, under their names (which must not
        be layer names). A parameterization whose images depend on something drawn afresh
        each call returns it here, so the objective gets it explicitly and from this very
        call (fast-style training: the photos the network just stylized). None by default.
        """
        return self(), {}

    def constrain(self) -> None:
        """Called by :func:`~featurevis.core.engine.optimize` after every optimizer step: project
        the parameters back into their allowed set (e.g. clip a generator's code). No-op here."""
