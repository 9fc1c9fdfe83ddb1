"""Parity of featurevis's zoo architectures with torchvision's, on random weights.

Needs an environment WITH torchvision (featurevis itself never imports it), e.g.:

    python3 -m venv /work/tvenv && /work/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 tqdm
    /work/tvenv/bin/pip install --no-deps torch-lucent==0.1.8   # optional: InceptionV1 reference
    OMP_NUM_THREADS=1 /work/tvenv/bin/python benchmarks/zoo_parity.py

For each of googlenet, vgg16, vgg19, resnet50, alexnet (and inception_v1 against Lucent's own
InceptionV1 definition, when ``torch-lucent`` is installed: ``pip install --no-deps torch-lucent``)
build the reference model with random initialization (batch-norm running statistics
randomized too, so folding them is exercised), save its state dict to a file, and
  1. load that file strictly into featurevis's architecture (plain, NCHW) and compare logits;
  2. load it through ``featurevis.load_model(name, weights=FILE)`` (the real path: safe
     loading, strict key check, BN folding, channels_last, normalization inside) and compare
     its logits on [0, 1] images with torchvision's on the same images normalized.
Pass: (1) within --tol absolute; (2) within --tol relative to max|logit| (folding batch norm
into the convs is exact algebra but rounds differently in float32, and the randomized ResNet's
logits reach ~1e3).
featurevis is imported from this checkout's ``src/`` (no install needed).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import featurevis as fv
from featurevis.zoo import ZOO, checkpoints


class LucentLogits(torch.nn.Module):
    """Lucent's InceptionV1 (random init), returning its pre-softmax logits instead of the softmax."""

    def __init__(self):
        super().__init__()
        from lucent.modelzoo.inceptionv1.InceptionV1 import InceptionV1

        self.net = InceptionV1(pretrained=False, redirected_ReLU=False)
        self._out = None
        self.net.softmax2_pre_activation_matmul.register_forward_hook(lambda m, a, o: setattr(self, "_out", o))

    def state_dict(self, *args, **kwargs):
        return self.net.state_dict(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.net(x)
        return self._out


def torchvision_model(name: str) -> torch.nn.Module:
    """The reference: torchvision's model, or for ``inception_v1`` Lucent's (pip install torch-lucent)."""
    if name == "inception_v1":
        return LucentLogits()
    from torchvision import models

    if name == "googlenet":  # torchvision's pretrained googlenet: aux heads in the file, transform_input on
        return models.googlenet(weights=None, aux_logits=True, transform_input=True, init_weights=True)
    return getattr(models, name)(weights=None)


@torch.no_grad()
def randomize_bn(model: torch.nn.Module, g: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


@torch.no_grad()
def check(name: str, size: int, batch: int, tmp: Path) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    tv = torchvision_model(name).eval()
    randomize_bn(tv, g)
    path = tmp / f"{name}.pth"
    torch.save(tv.state_dict(), path)

    entry = ZOO[name]
    sd = checkpoints.read_state_dict(path)
    ours = checkpoints.load_strict(entry.arch(sd), sd, name, str(path)).eval()
    if name == "googlenet":
        ours.transform_input = True

    x01 = torch.rand(batch, 3, size, size, generator=g)
    mean, std = torch.tensor(entry.mean).view(1, 3, 1, 1), torch.tensor(entry.std).view(1, 3, 1, 1)
    xn = (x01 - mean) / std
    ref = tv(xn)
    plain = (ours(xn) - ref).abs().max().item()
    fm = fv.load_model(name, weights=path, download=False)
    full = (fm(x01, ["logits"])["logits"] - ref).abs().max().item()
    return {"plain": plain, "full": full, "scale": ref.abs().max().item()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="googlenet,vgg16,vgg19,resnet50,alexnet,inception_v1")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    import torchvision

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {args.batch}x3x{args.size}x{args.size}")
    print(
        f"{'model':<12} {'strict':<7} {'max|d| plain':>13} {'max|d| load_model':>18} {'(relative)':>11} "
        f"{'max|logit|':>11}"
    )
    ok = True
    with tempfile.TemporaryDirectory() as d:
        for name in args.models.split(","):
            if name == "inception_v1" and importlib.util.find_spec("lucent") is None:
                print(f"{name:<12} skipped: torch-lucent is not installed")
                continue
            r = check(name, args.size, args.batch, Path(d))
            rel = r["full"] / max(r["scale"], 1e-12)
            passed = r["plain"] <= args.tol and rel <= args.tol
            ok &= passed
            print(
                f"{name:<12} {'ok':<7} {r['plain']:>13.2e} {r['full']:>18.2e} {rel:>11.2e} "
                f"{r['scale']:>11.3g}  {'PASS' if passed else 'FAIL'} (tol {args.tol:g})"
            )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
