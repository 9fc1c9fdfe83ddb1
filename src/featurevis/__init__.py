"""featurevis: see what a trained image network has learned.

import featurevis as fv
result = fv.render("efficientnet_lite0", "_blocks.8:12")
result.save("channel.png")
"""

from .catalog.build import BuildReport, build_catalog, load_model_spec
from .catalog.store import CatalogStore
from .core import objectives, transforms
from .core.engine import NormalizedSGD, RenderResult, optimize
from .core.errors import FeaturevisError
from .core.generators import Generator, UpconvGenerator, activation_bounds, deepsim_fc6, load_generator, save_generator
from .core.images import load_image, save_image
from .core.model import FeatureModel
from .core.objectives import Objective
from .core.params import CodeImage, FourierImage, PixelImage
from .core.params.cppn import CPPNGenome, CPPNImage
from .core.params.maco import MacoImage, natural_spectrum
from .core.targets import parse_target
from .recipes.attack import AttackResult, attack
from .recipes.dgn import dgn, encode_images
from .recipes.dream import DreamResult, dream, dream_zoom
from .recipes.evolve import EvolveResult, evolve
from .recipes.fast_style import StyleNet, load_style_net, stylize, train_style_net
from .recipes.invert import InversionResult, invert, invert_depths
from .recipes.prior_train import train_prior
from .recipes.render import render
from .recipes.saliency import SaliencyResult, saliency
from .recipes.style import StyleResult, style_transfer
from .zoo import ZOO, ZooEntry, as_model, imagenet_labels, inception_v1_labels, load_model

__version__ = "0.1.0"

__all__ = [
    "ZOO",
    "AttackResult",
    "BuildReport",
    "CPPNGenome",
    "CPPNImage",
    "CatalogStore",
    "CodeImage",
    "DreamResult",
    "EvolveResult",
    "FeatureModel",
    "FeaturevisError",
    "FourierImage",
    "Generator",
    "InversionResult",
    "MacoImage",
    "NormalizedSGD",
    "Objective",
    "PixelImage",
    "RenderResult",
    "SaliencyResult",
    "StyleNet",
    "StyleResult",
    "UpconvGenerator",
    "ZooEntry",
    "activation_bounds",
    "as_model",
    "attack",
    "build_catalog",
    "deepsim_fc6",
    "dgn",
    "dream",
    "dream_zoom",
    "encode_images",
    "evolve",
    "imagenet_labels",
    "inception_v1_labels",
    "invert",
    "invert_depths",
    "load_generator",
    "load_image",
    "load_model",
    "load_model_spec",
    "load_style_net",
    "natural_spectrum",
    "objectives",
    "optimize",
    "parse_target",
    "render",
    "saliency",
    "save_generator",
    "save_image",
    "style_transfer",
    "stylize",
    "train_prior",
    "train_style_net",
    "transforms",
]
