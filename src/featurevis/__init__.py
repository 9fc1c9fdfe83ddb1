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
from .dgn import CodeImage, dgn, encode_images
from .dream import DreamResult, dream, dream_zoom
from .errors import FeaturevisError
from .evolve import EvolveResult, evolve
from .fast_style import StyleNet, load_style_net, stylize, train_style_net
from .generator import Generator, UpconvGenerator, activation_bounds, deepsim_fc6, load_generator, save_generator
from .images import load_image, save_image
from .invert import InversionResult, invert, invert_depths
from .maco import MacoImage, natural_spectrum
from .model import FeatureModel
from .objectives import Objective
from .param import FourierImage, PixelImage
from .prior_train import train_prior
from .render import NormalizedSGD, RenderResult, optimize, render
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
