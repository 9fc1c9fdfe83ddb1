"""featurevis: see what a trained image network has learned.

import featurevis as fv
result = fv.render("efficientnet_lite0", "_blocks.8:12")
result.save("channel.png")
"""

from . import objectives, transforms
from .attack import AttackResult, attack
from .catalog import BuildReport, build_catalog, load_model_spec
from .catalog_store import CatalogStore
from .cppn import CPPNGenome, CPPNImage
from .dream import DreamResult, dream, dream_zoom
from .errors import FeaturevisError
from .evolve import EvolveResult, evolve
from .fast_style import StyleNet, load_style_net, stylize, train_style_net
from .images import load_image, save_image
from .invert import InversionResult, invert, invert_depths
from .model import FeatureModel
from .objectives import Objective
from .param import FourierImage, PixelImage
from .render import RenderResult, optimize, render
from .saliency import SaliencyResult, saliency
from .style import StyleResult, style_transfer
from .targets import parse_target
from .zoo import ZOO, ZooEntry, as_model, imagenet_labels, inception_v1_labels, load_model

__version__ = "0.1.0"

__all__ = [
    "ZOO",
    "AttackResult",
    "BuildReport",
    "CPPNGenome",
    "CPPNImage",
    "CatalogStore",
    "DreamResult",
    "EvolveResult",
    "FeatureModel",
    "FeaturevisError",
    "FourierImage",
    "InversionResult",
    "Objective",
    "PixelImage",
    "RenderResult",
    "SaliencyResult",
    "StyleNet",
    "StyleResult",
    "ZooEntry",
    "as_model",
    "attack",
    "build_catalog",
    "dream",
    "dream_zoom",
    "evolve",
    "imagenet_labels",
    "inception_v1_labels",
    "invert",
    "invert_depths",
    "load_image",
    "load_model",
    "load_model_spec",
    "load_style_net",
    "objectives",
    "optimize",
    "parse_target",
    "render",
    "saliency",
    "save_image",
    "style_transfer",
    "stylize",
    "train_style_net",
    "transforms",
]
