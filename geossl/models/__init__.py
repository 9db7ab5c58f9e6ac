"""Segmentation models (segmentation-models-pytorch with timm encoders) and self-describing model bundles."""

from geossl.models.bundle import ModelBundle, TrainedOn, describe_bundle, described_bands, load_bundle, save_bundle
from geossl.models.config import ModelConfig
from geossl.models.segmenter import Segmenter

__all__ = ["ModelBundle", "ModelConfig", "Segmenter", "TrainedOn", "describe_bundle", "described_bands", "load_bundle",
           "save_bundle"]
