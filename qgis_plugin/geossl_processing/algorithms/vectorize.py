"""``geossl vectorize``: class polygons from a class raster; loads them with their class style."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ..algorithm import GeosslAlgorithm
from ..layers import load
from .ingest import YAML

FORMATS = "GeoPackage (*.gpkg);;FlatGeobuf (*.fgb);;GeoJSON (*.geojson)"


class Vectorize(GeosslAlgorithm):
    """geossl vectorize."""

    command = "vectorize"
    title = "Vectorize a class raster"
    help = ("<p>Turns a class raster (geossl predict's, or ingest's labels) into polygons with class, area and, "
            "given a confidence raster, mean confidence. Small regions can be merged into a neighbour first, "
            "and the polygons simplified as one coverage (no gaps, no overlaps). Loaded with the class "
            "colours.</p>")

    def add_parameters(self) -> None:
        """Class raster, sieve, simplify, confidence, classes, output."""
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Class raster"))
        self.add_number("MIN_AREA", "Merge regions smaller than (map units²)", 0, integer=False)
        self.add_number("SIMPLIFY", "Simplify with tolerance (map units)", 0, integer=False)
        self.addParameter(QgsProcessingParameterRasterLayer("CONFIDENCE", "Confidence raster", optional=True))
        self.add_file("CLASSES", "Class names and colours from this manifest", YAML, optional=True)
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Polygons", FORMATS))

    def arguments(self, parameters, context) -> list:
        """``CLASS_RASTER --out --overwrite [--min-area] [--simplify] [--confidence] [--classes]``."""
        raster = self.layer_file(self.parameterAsRasterLayer(parameters, "INPUT", context), "class raster")
        confidence = self.parameterAsRasterLayer(parameters, "CONFIDENCE", context)
        return [raster, "--out", self.parameterAsFileOutput(parameters, "OUTPUT", context), "--overwrite",
                *self.flag(parameters, context, "MIN_AREA", "--min-area", "double"),
                *self.flag(parameters, context, "SIMPLIFY", "--simplify", "double"),
                *(["--confidence", self.layer_file(confidence, "confidence raster")] if confidence else []),
                *self.flag(parameters, context, "CLASSES", "--classes", "file")]

    def results(self, parameters, context, printed: list) -> dict:
        """The polygons (loaded)."""
        load(context, str(printed[-1]), printed[-1].stem, vector=True)
        return {"OUTPUT": str(printed[-1])}
