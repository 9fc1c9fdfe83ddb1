"""A small TopK sparse autoencoder of activation samples (Gao et al. 2024, "Scaling and
evaluating sparse autoencoders").

NMF (:mod:`.factorize`) finds a few non-negative parts; a sparse autoencoder finds a
dictionary of directions of which each sample uses only a few. TopK sets the sparsity
directly: the encoder's pre-activations ``W_enc (x - b_pre) + b_enc`` keep their ``topk``
largest entries and zero the rest, so exactly ``topk`` latents are active per sample (no L1
penalty to tune, no shrinkage of the kept values), and the decoder ``x̂ = W_dec z + b_pre`` has
unit-norm columns, each a direction in the layer's channel space. As in the paper the encoder
starts as the decoder's transpose, ``b_pre`` as the samples' mean, the inputs are scaled to unit
mean squared norm, and the loss is the normalized MSE, trained with Adam.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import FeaturevisError


class TopKSAE(nn.Module):
    """Encoder → keep the ``topk`` largest latents → decoder with unit-norm columns."""

    def __init__(self, channels: int, latents: int, topk: int):
        super().__init__()
        self.topk = topk
        dec = torch.randn(channels, latents)
        self.w_dec = nn.Parameter(dec / dec.norm(dim=0, keepdim=True))
        self.w_enc = nn.Parameter(self.w_dec.detach().t().clone())
        self.b_enc = nn.Parameter(torch.zeros(latents))
        self.b_pre = nn.Parameter(torch.zeros(channels))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent codes (M×latents) with exactly ``topk`` entries kept per row."""
        pre = (x - self.b_pre) @ self.w_enc.t() + self.b_enc
        top = pre.topk(self.topk, dim=1)
        return torch.zeros_like(pre).scatter(1, top.indices, top.values)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.w_dec.t() + self.b_pre

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode(z), z

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.w_dec /= self.w_dec.norm(dim=0, keepdim=True).clamp_min(1e-12)


@dataclass
class SAEFit:
    """A trained TopK SAE on samples scaled by ``scale`` (so ``x / scale`` has unit mean square)."""

    sae: TopKSAE
    scale: float
    losses: list[float] = field(default_factory=list)  # normalized MSE per logged step
    error: float = 0.0  # ||X − X̂||_F / ||X||_F on the training samples
    explained_variance: float = 0.0  # 1 − ||X − X̂||² / ||X − mean||²
    dead: int = 0  # latents never active on the training samples

    @property
    def k(self) -> int:
        return self.sae.w_dec.shape[1]

    @property
    def directions(self) -> torch.Tensor:
        """k×C: each latent's decoder column, a unit direction in the layer's channel space."""
        return self.sae.w_dec.detach().t().clone()

    @torch.no_grad()
    def transform(self, samples: torch.Tensor) -> torch.Tensor:
        """The latent codes (M×k) of new samples, in the units of the unscaled samples."""
        out = [self.sae.encode(chunk.float() / self.scale) for chunk in samples.split(8192)]
        return torch.cat(out) * self.scale

    @torch.no_grad()
    def reconstruct(self, samples: torch.Tensor) -> torch.Tensor:
        out = [self.sae(chunk.float() / self.scale)[0] for chunk in samples.split(8192)]
        return torch.cat(out) * self.scale


def reconstruction_figures(samples: torch.Tensor, recon: torch.Tensor) -> tuple[float, float]:
    """(relative error ``||X − X̂|| / ||X||``, explained variance ``1 − ||X − X̂||² / ||X − X̄||²``)
    in the layer's channel space: one yardstick for NMF and SAE atoms alike."""
    x = samples.float()
    resid = float((x - recon).pow(2).sum())
    total = float((x - x.mean(0)).pow(2).sum())
    return (resid / max(float(x.pow(2).sum()), 1e-30)) ** 0.5, 1 - resid / max(total, 1e-30)


def train_sae(
    samples: torch.Tensor,
    k: int,
    *,
    topk: int = 8,
    steps: int = 2000,
    batch: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    log_every: int = 50,
) -> SAEFit:
    """Train a TopK SAE with ``k`` latents, ``topk`` active per sample, on ``samples`` (M×C).

    Raises:
        FeaturevisError: ``k`` or ``topk`` out of range, or the samples are not finite.
    """
    if samples.dim() != 2 or not len(samples):
        raise FeaturevisError(f"an SAE needs a table of samples × channels, not shape {tuple(samples.shape)}")
    if not torch.isfinite(samples).all():
        raise FeaturevisError("the activations to encode are not all finite numbers")
    if k < 1:
        raise FeaturevisError(f"an SAE needs at least 1 latent, not {k}")
    if not 1 <= topk <= k:
        raise FeaturevisError(f"active latents per sample (topk) must be 1..{k}, not {topk}")
    x = samples.detach().float().cpu()
    scale = float(x.pow(2).sum(1).mean().sqrt())
    if scale == 0:
        raise FeaturevisError("the activations to encode are all zero: nothing to learn")
    x = x / scale
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        sae = TopKSAE(x.shape[1], k, topk)
    with torch.no_grad():
        sae.b_pre.copy_(x.mean(0))
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    var = float((x - x.mean(0)).pow(2).sum(1).mean())
    losses: list[float] = []
    running = 0.0
    for step in range(steps):
        idx = torch.randint(len(x), (min(batch, len(x)),), generator=g)
        xb = x[idx]
        recon, _ = sae(xb)
        loss = (recon - xb).pow(2).sum(1).mean() / max(var, 1e-12)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():  # keep the decoder's columns unit norm: drop the gradient along them
            w = sae.w_dec
            w.grad -= (w.grad * w).sum(0, keepdim=True) * w
        opt.step()
        sae.normalize_decoder()
        running += loss.item()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            losses.append(running / (log_every if (step + 1) % log_every == 0 else (step + 1) % log_every))
            running = 0.0
    sae.requires_grad_(False)
    fit = SAEFit(sae, scale, losses)
    recon = fit.reconstruct(samples)
    fit.error, fit.explained_variance = reconstruction_figures(samples, recon)
    active = torch.zeros(k, dtype=torch.bool)
    for chunk in samples.split(8192):
        active |= (sae.encode(chunk.float() / scale) != 0).any(0)
    fit.dead = int((~active).sum())
    return fit
