"""``geossl predict``: class COGs of scenes; loads each with its class palette."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
)

from ..algorithm import GeosslAlgorithm
from ..layers import load
from .suggest import MODEL


class Predict(GeosslAlgorithm):
    """geossl predict."""

    command = "predict"
    title = "Predict land cover"
    help = ("<p>Predicts land cover over the scenes with the model and writes, per scene, a class COG (loaded, "
            "with the class palette and names), a confidence COG and a STAC Item into the output folder.</p>")

    def add_parameters(self) -> None:
        """Model, scenes, output folder."""
        self.add_file("CHECKPOINT", "Model (geossl train's model.pt)", MODEL)
        self.addParameter(QgsProcessingParameterMultipleLayers("SCENES", "Scenes", QgsProcessing.TypeRaster))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputMultipleLayers("CLASSES", "Class rasters"))

    def arguments(self, parameters, context) -> list:
        """``CHECKPOINT SCENE... --out``."""
        scenes = [self.layer_file(layer, "scene") for layer in self.parameterAsLayerList(parameters, "SCENES",
                                                                                          context)]
        return [self.parameterAsFile(parameters, "CHECKPOINT", context), *scenes,
                "--out", self.parameterAsString(parameters, "OUTPUT", context)]

    def results(self, parameters, context, printed: list) -> dict:
        """The output folder and the class COGs (loaded)."""
        for path in printed:
            load(context, str(path), path.stem)
        return {"OUTPUT": self.parameterAsString(parameters, "OUTPUT", context),
                "CLASSES": [str(p) for p in printed]}
