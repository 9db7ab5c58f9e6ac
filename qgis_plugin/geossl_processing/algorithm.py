"""The base of every geossl algorithm: parameters in, a geossl command line out, outputs loaded.

A subclass names its geossl command, declares its parameters (:meth:`GeosslAlgorithm.add_parameters`), turns
them into the command's arguments (:meth:`~GeosslAlgorithm.arguments`) and reads what the command wrote
(:meth:`~GeosslAlgorithm.results`, which also asks for layers to be loaded: :mod:`.layers`). Every algorithm
has an advanced parameter for any other flag of its command, written as on the command line.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from processing.core.ProcessingConfig import ProcessingConfig
from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtGui import QIcon

from .runner import run_geossl

#: The provider's setting: the Python environment geossl runs in.
ENVIRONMENT_SETTING = "GEOSSL_ENVIRONMENT"
#: Every algorithm's parameter for the command's other flags.
OPTIONS = "OPTIONS"
ICON = Path(__file__).resolve().parent / "icon.svg"


class GeosslAlgorithm(QgsProcessingAlgorithm):
    """One geossl command (see the module docstring)."""

    #: geossl's command (also the algorithm's id).
    command = ""
    #: The name shown in the toolbox.
    title = ""
    #: The help shown beside the parameters.
    help = ""

    def name(self) -> str:
        """The algorithm's id within the provider: the command."""
        return self.command

    def displayName(self) -> str:  # noqa: N802 - QGIS's names from here on
        """The name shown in the toolbox."""
        return self.title

    def shortHelpString(self) -> str:
        """The help shown beside the parameters."""
        return self.help + f"<p>Runs <code>geossl {self.command}</code> in the geossl environment (Processing › " \
                           "Options › Providers › geossl).</p>"

    def icon(self) -> QIcon:
        """The geossl icon."""
        return QIcon(str(ICON))

    def createInstance(self) -> GeosslAlgorithm:
        """A new algorithm of the same kind."""
        return type(self)()

    def initAlgorithm(self, config=None) -> None:
        """The command's parameters, then the one for its other flags."""
        self.add_parameters()
        options = QgsProcessingParameterString(OPTIONS, f"Other flags of geossl {self.command}", optional=True)
        options.setFlags(options.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(options)

    def processAlgorithm(self, parameters, context, feedback) -> dict:
        """Run the command; return the outputs (and have the layers loaded)."""
        arguments = [self.command, *self.arguments(parameters, context)]
        arguments += shlex.split(self.parameterAsString(parameters, OPTIONS, context) or "")
        environment = ProcessingConfig.getSetting(ENVIRONMENT_SETTING)
        printed = run_geossl(environment, arguments, feedback)
        return self.results(parameters, context, [Path(p) for p in printed if p.strip()])

    # What a subclass writes ------------------------------------------------------------------------------

    def add_parameters(self) -> None:
        """Add the command's parameters."""
        raise NotImplementedError

    def arguments(self, parameters, context: QgsProcessingContext) -> list:
        """The command's arguments and flags."""
        raise NotImplementedError

    def results(self, parameters, context: QgsProcessingContext, printed: list) -> dict:
        """The outputs, from the parameters and the paths the command printed; ask for layers to be loaded."""
        raise NotImplementedError

    # Helpers ---------------------------------------------------------------------------------------------

    def add_file(self, name: str, description: str, extensions: str = "", folder: bool = False,
                 optional: bool = False) -> None:
        """A file (``extensions``: a file dialog filter such as ``YAML (*.yaml *.yml)``) or folder parameter."""
        behavior = QgsProcessingParameterFile.Folder if folder else QgsProcessingParameterFile.File
        self.addParameter(QgsProcessingParameterFile(name, description, behavior=behavior, optional=optional,
                                                     fileFilter=extensions))

    def add_number(self, name: str, description: str, minimum: float, integer: bool = True) -> None:
        """An optional number parameter (left empty: geossl's default applies)."""
        kind = QgsProcessingParameterNumber.Integer if integer else QgsProcessingParameterNumber.Double
        self.addParameter(QgsProcessingParameterNumber(name, description, kind, optional=True, minValue=minimum))

    def add_data_root(self, description: str = "Data root (the manifest's paths are taken from here)") -> None:
        """The optional ``DATA_ROOT`` folder, passed as ``--data-root`` (:meth:`data_root_flag`)."""
        self.add_file("DATA_ROOT", description, folder=True, optional=True)

    def data_root_flag(self, parameters, context: QgsProcessingContext) -> list:
        """``["--data-root", DIR]`` when :meth:`add_data_root`'s folder is given, else ``[]``."""
        return self.flag(parameters, context, "DATA_ROOT", "--data-root", "file")

    def flag(self, parameters, context: QgsProcessingContext, name: str, flag: str, kind: str = "string") -> list:
        """``[flag, value]`` when the parameter ``name`` has a value, else ``[]`` (geossl's default applies)."""
        if parameters.get(name) is None or parameters.get(name) == "":
            return []
        read = {"string": self.parameterAsString, "int": self.parameterAsInt, "double": self.parameterAsDouble,
                "file": self.parameterAsFile}[kind]
        value = read(parameters, name, context)
        return [] if value in (None, "") else [flag, str(value)]

    @staticmethod
    def layer_file(layer, what: str) -> str:
        """The file behind a raster layer (geossl reads files)."""
        path = layer.source().split("|")[0]
        if not Path(path).is_file():
            raise QgsProcessingException(f"{what} {layer.name()} is not a file ({layer.source()}); geossl reads files")
        return path
