"""``geossl suggest``: where to label next; loads the windows and the layer to draw labels in, ready to draw."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterFileDestination

from ..algorithm import GeosslAlgorithm
from ..layers import load_suggestions
from .ingest import YAML

MODEL = "Model (*.pt)"


class Suggest(GeosslAlgorithm):
    """geossl suggest."""

    command = "suggest"
    title = "Suggest where to label next"
    help = ("<p>Ranks windows of the catalog's unlabeled area for labelling and writes them to a GeoPackage, "
            "with an empty layer <code>labels</code> to draw in: its form offers the manifest's classes. Both "
            "are loaded, with snapping to the windows and new polygons cut out of those already drawn. Draw in "
            "the first windows, save, name <code>FILE.gpkg|layername=labels</code> in the manifest's "
            "<code>labels.drawn</code>, then ingest and train again. Running this again into the same file "
            "keeps the polygons drawn in it.</p>")

    def add_parameters(self) -> None:
        """Model, manifest, catalog, windows, size, data root, GeoPackage."""
        self.add_file("CHECKPOINT", "Model (geossl train's model.pt)", MODEL)
        self.add_file("MANIFEST", "Data manifest", YAML)
        self.add_file("CATALOG", "Catalog folder", folder=True)
        self.add_number("N", "Windows to suggest [geossl's default]", 1)
        self.add_number("SIZE", "Window side in pixels [geossl's default]", 8)
        self.add_data_root()
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Suggestions", "GeoPackage (*.gpkg)"))

    def arguments(self, parameters, context) -> list:
        """``CHECKPOINT MANIFEST --catalog --out --overwrite [--n] [--size] [--data-root]``."""
        return [self.parameterAsFile(parameters, "CHECKPOINT", context),
                self.parameterAsFile(parameters, "MANIFEST", context),
                "--catalog", self.parameterAsFile(parameters, "CATALOG", context),
                "--out", self.parameterAsFileOutput(parameters, "OUTPUT", context), "--overwrite",
                *self.flag(parameters, context, "N", "--n", "int"),
                *self.flag(parameters, context, "SIZE", "--size", "int"),
                *self.data_root_flag(parameters, context)]

    def results(self, parameters, context, printed: list) -> dict:
        """The GeoPackage; its windows and label layer loaded."""
        load_suggestions(context, printed[-1])
        return {"OUTPUT": str(printed[-1])}
