"""``geossl train``: a model from a manifest's catalog (torch runs in geossl's environment, never in QGIS)."""

from __future__ import annotations

from qgis.core import QgsProcessingOutputFile, QgsProcessingParameterFolderDestination

from ..algorithm import GeosslAlgorithm
from .ingest import YAML


class Train(GeosslAlgorithm):
    """geossl train."""

    command = "train"
    title = "Train a model"
    help = ("<p>Trains a segmentation model on the manifest's catalog (ingested there first when it holds none) "
            "and writes checkpoints, logs and <code>model.pt</code> into the run folder. The training config "
            "(a YAML file of geossl train's options) and the other flags choose the model and the strategy; "
            "<code>--resume</code> continues a run.</p>")

    def add_parameters(self) -> None:
        """Manifest, catalog, config, steps, data root, run folder."""
        self.add_file("MANIFEST", "Data manifest", YAML)
        self.add_file("CATALOG", "Catalog folder (geossl ingest's output)", folder=True)
        self.add_file("CONFIG", "Training config", YAML, optional=True)
        self.add_number("MAX_STEPS", "Training steps [the config's or geossl's]", 1)
        self.add_data_root()
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Run folder"))
        self.addOutput(QgsProcessingOutputFile("MODEL", "Model"))

    def arguments(self, parameters, context) -> list:
        """``MANIFEST --catalog --out [--config] [--max-steps] [--data-root]``."""
        return [self.parameterAsFile(parameters, "MANIFEST", context),
                "--catalog", self.parameterAsFile(parameters, "CATALOG", context),
                "--out", self.parameterAsString(parameters, "OUTPUT", context),
                *self.flag(parameters, context, "CONFIG", "--config", "file"),
                *self.flag(parameters, context, "MAX_STEPS", "--max-steps", "int"),
                *self.data_root_flag(parameters, context)]

    def results(self, parameters, context, printed: list) -> dict:
        """The run folder and its model."""
        model = printed[-1]
        return {"OUTPUT": str(model.parent), "MODEL": str(model)}
