"""i2h: screenshot in, HTML out. A small, trainable, self-hostable image-to-HTML model."""
from .config import I2HConfig, ImageConfig, TextConfig, VisionConfig, PRESETS, get_preset
from .generate import Prediction, Predictor, load, repair_html
from .images import ImageError, ImageProcessor, load_image
from .model import I2HModel

__version__ = "0.1.0"
__all__ = [
    "I2HConfig", "ImageConfig", "TextConfig", "VisionConfig", "PRESETS", "get_preset",
    "Prediction", "Predictor", "load", "repair_html",
    "ImageError", "ImageProcessor", "load_image", "I2HModel",
]
