"""``geossl ingest``: a manifest's imagery and labels as COGs and a catalog; loads the images and the labels."""

from __future__ import annotations

import json
from pathlib import Path

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFolderDestination,
)

from ..algorithm import GeosslAlgorithm
from ..layers import load

YAML = "YAML (*.yaml *.yml)"


class Ingest(GeosslAlgorithm):
    """geossl ingest."""

    command = "ingest"
    title = "Ingest a manifest"
    help = ("<p>Aligns the manifest's imagery and labels (rasters, vectors and the polygons drawn in "
            "<code>labels.drawn</code>) onto one grid and writes COGs, band statistics, the splits and a catalog "
            "into the catalog folder. Loads the images (true colour when their bands are named red, green, blue) "
            "and the labels with their class palette.</p>")

    def add_parameters(self) -> None:
        """Manifest, data root, catalog folder, workers, force."""
        self.add_file("MANIFEST", "Data manifest", YAML)
        self.add_data_root()
        self.add_number("WORKERS", "Dask workers [geossl's default: one per core]", 1)
        self.addParameter(QgsProcessingParameterBoolean("FORCE", "Ingest again even if up to date", False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Catalog folder"))
        self.addOutput(QgsProcessingOutputFile("CATALOG", "Catalog"))

    def arguments(self, parameters, context) -> list:
        """``MANIFEST --out OUTPUT [--data-root] [--workers] [--force]``."""
        force = ["--force"] if self.parameterAsBool(parameters, "FORCE", context) else []
        return [self.parameterAsFile(parameters, "MANIFEST", context),
                "--out", self.parameterAsString(parameters, "OUTPUT", context),
                *self.data_root_flag(parameters, context),
                *self.flag(parameters, context, "WORKERS", "--workers", "int"), *force]

    def results(self, parameters, context, printed: list) -> dict:
        """The catalog; its images and labels loaded."""
        catalog = printed[-1]
        folder = catalog.parent
        for scene in json.loads(catalog.read_text(encoding="utf-8"))["scenes"]:
            load(context, str(folder / scene["image"]), f"{scene['id']} image", "image")
            if scene.get("labels"):
                load(context, str(folder / scene["labels"]), f"{scene['id']} labels")
        return {"OUTPUT": str(folder), "CATALOG": str(Path(catalog))}
