"""featurevis: see what a trained image network has learned.

import featurevis as fv
result = fv.render("efficientnet_lite0", "_blocks.8:12")
result.save("channel.png")

The public names below are imported on first use, not at ``import featurevis``: the command
line (``featurevis --help``, a mistyped command) then answers without loading torch, and a
Ctrl-C while torch loads reaches the CLI's handler instead of printing a traceback.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from .catalog.build import BuildReport, build_catalog, load_model_spec
    from .catalog.concepts import ConceptReport, build_concepts, fit_atoms, unit_objective
    from .catalog.scores import UnitScores, export_scores, score_catalog, score_unit
    from .catalog.store import CatalogStore
    from .core import objectives, transforms
    from .core.engine import NormalizedSGD, RenderResult, optimize
    from .core.errors import FeaturevisError, FeaturevisNote
    from .core.generators import (
        Generator,
        UpconvGenerator,
        activation_bounds,
        deepsim_fc6,
        load_generator,
        save_generator,
    )
    from .core.images import load_image, save_image
    from .core.model import FeatureModel
    from .core.objectives import Objective
    from .core.params import AlignedFourierImage, AlphaImage, CodeImage, FourierImage, PixelImage
    from .core.params.cppn import CPPNGenome, CPPNImage
    from .core.params.maco import MacoImage, natural_spectrum
    from .core.targets import parse_target
    from .recipes.accentuate import AccentuationResult, accentuate
    from .recipes.atlas import AtlasResult, atlas
    from .recipes.attack import AttackResult, attack
    from .recipes.attribution import AttributionResult, attribute
    from .recipes.caricature import CaricatureResult, caricature
    from .recipes.dgn import dgn, encode_images
    from .recipes.dream import DreamResult, dream, dream_zoom
    from .recipes.evolve import EvolveResult, evolve
    from .recipes.fast_style import StyleNet, load_style_net, stylize, train_style_net
    from .recipes.groups import ActivationGridResult, GroupsResult, activation_grid, groups
    from .recipes.invert import InversionResult, invert, invert_depths
    from .recipes.prior_train import train_prior
    from .recipes.render import interpolate, render
    from .recipes.saliency import SaliencyResult, saliency
    from .recipes.sanity import RandomizationResult, TransformCheckResult, randomization_check, transform_check
    from .recipes.style import StyleResult, style_transfer
    from .zoo import ZOO, ZooEntry, as_model, imagenet_labels, inception_v1_labels, load_model


#: module (relative to this package) -> the public names it provides.
_EXPORTS: dict[str, tuple[str, ...]] = {
    ".catalog.build": ("BuildReport", "build_catalog", "load_model_spec"),
    ".catalog.concepts": ("ConceptReport", "build_concepts", "fit_atoms", "unit_objective"),
    ".catalog.scores": ("UnitScores", "export_scores", "score_catalog", "score_unit"),
    ".catalog.store": ("CatalogStore",),
    ".core": ("objectives", "transforms"),
    ".core.engine": ("NormalizedSGD", "RenderResult", "optimize"),
    ".core.errors": ("FeaturevisError", "FeaturevisNote"),
    ".core.generators": (
        "Generator",
        "UpconvGenerator",
        "activation_bounds",
        "deepsim_fc6",
        "load_generator",
        "save_generator",
    ),
    ".core.images": ("load_image", "save_image"),
    ".core.model": ("FeatureModel",),
    ".core.objectives": ("Objective",),
    ".core.params": ("AlignedFourierImage", "AlphaImage", "CodeImage", "FourierImage", "PixelImage"),
    ".core.params.cppn": ("CPPNGenome", "CPPNImage"),
    ".core.params.maco": ("MacoImage", "natural_spectrum"),
    ".core.targets": ("parse_target",),
    ".recipes.accentuate": ("AccentuationResult", "accentuate"),
    ".recipes.atlas": ("AtlasResult", "atlas"),
    ".recipes.attack": ("AttackResult", "attack"),
    ".recipes.caricature": ("CaricatureResult", "caricature"),
    ".recipes.attribution": ("AttributionResult", "attribute"),
    ".recipes.dgn": ("dgn", "encode_images"),
    ".recipes.dream": ("DreamResult", "dream", "dream_zoom"),
    ".recipes.evolve": ("EvolveResult", "evolve"),
    ".recipes.fast_style": ("StyleNet", "load_style_net", "stylize", "train_style_net"),
    ".recipes.groups": ("ActivationGridResult", "GroupsResult", "activation_grid", "groups"),
    ".recipes.invert": ("InversionResult", "invert", "invert_depths"),
    ".recipes.prior_train": ("train_prior",),
    ".recipes.render": ("interpolate", "render"),
    ".recipes.saliency": ("SaliencyResult", "saliency"),
    ".recipes.sanity": ("RandomizationResult", "TransformCheckResult", "randomization_check", "transform_check"),
    ".recipes.style": ("StyleResult", "style_transfer"),
    ".zoo": ("ZOO", "ZooEntry", "as_model", "imagenet_labels", "inception_v1_labels", "load_model"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562) and keep the name here."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    owner = importlib.import_module(module, __name__)
    try:
        value = getattr(owner, name)
    except AttributeError:  # a submodule (objectives, transforms) not imported by its package yet
        value = importlib.import_module(f"{module}.{name}", __name__)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
