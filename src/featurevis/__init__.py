"""featurevis: see what a trained image network has learned.

import featurevis as fv
result = fv.render("efficientnet_lite0", "_blocks.8:12")
result.save("channel.png")
"""

from . import objectives, transforms
from .catalog import BuildReport, build_catalog, load_model_spec
from .catalog_store import CatalogStore
from .dream import DreamResult, dream, dream_zoom
from .errors import FeaturevisError
from .fast_style import StyleNet, load_style_net, stylize, train_style_net
from .images import load_image, save_image
from .invert import InversionResult, invert, invert_depths
from .model import FeatureModel
from .objectives import Objective
from .param import FourierImage, PixelImage
from .render import RenderResult, optimize, render
from .style import StyleResult, style_transfer
from .targets import parse_target
from .zoo import ZOO, as_model, imagenet_labels, load_model

__version__ = "0.1.0"

__all__ = [
    "ZOO",
    "BuildReport",
    "CatalogStore",
    "DreamResult",
    "FeatureModel",
    "FeaturevisError",
    "FourierImage",
    "InversionResult",
    "Objective",
    "PixelImage",
    "RenderResult",
    "StyleNet",
    "StyleResult",
    "as_model",
    "build_catalog",
    "dream",
    "dream_zoom",
    "imagenet_labels",
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
    "save_image",
    "style_transfer",
    "stylize",
    "train_style_net",
    "transforms",
]
