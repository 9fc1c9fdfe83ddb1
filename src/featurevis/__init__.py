"""featurevis: see what a trained image network has learned.

import featurevis as fv
result = fv.render("efficientnet_lite0", "_blocks.8:12")
result.save("channel.png")
"""

from . import objectives, transforms
from .dgn import CodeImage, dgn, encode_images
from .dream import DreamResult, dream, dream_zoom
from .errors import FeaturevisError
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
from .style import StyleResult, style_transfer
from .targets import parse_target
from .zoo import ZOO, as_model, imagenet_labels, load_model

__version__ = "0.1.0"

__all__ = [
    "ZOO",
    "CodeImage",
    "DreamResult",
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
    "StyleNet",
    "StyleResult",
    "UpconvGenerator",
    "activation_bounds",
    "as_model",
    "deepsim_fc6",
    "dgn",
    "dream",
    "dream_zoom",
    "encode_images",
    "imagenet_labels",
    "invert",
    "invert_depths",
    "load_generator",
    "load_image",
    "load_model",
    "load_style_net",
    "natural_spectrum",
    "objectives",
    "optimize",
    "parse_target",
    "render",
    "save_generator",
    "save_image",
    "style_transfer",
    "stylize",
    "train_prior",
    "train_style_net",
    "transforms",
]
