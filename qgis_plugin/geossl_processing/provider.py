"""The geossl provider of the Processing Toolbox: its algorithms and its one setting, the geossl environment."""

from __future__ import annotations

from processing.core.ProcessingConfig import ProcessingConfig, Setting
from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithm import ENVIRONMENT_SETTING, ICON
from .algorithms import ALGORITHMS
from .environment import default_environment


class GeosslProvider(QgsProcessingProvider):
    """geossl's commands as Processing algorithms (``geossl:ingest``, ``geossl:train``...)."""

    def id(self) -> str:
        """The provider's id, the prefix of its algorithms' ids."""
        return "geossl"

    def name(self) -> str:
        """The name shown in the toolbox."""
        return "geossl"

    def longName(self) -> str:  # noqa: N802 - QGIS's names
        """The name shown in the options."""
        return "geossl: land-cover mapping with few labels"

    def icon(self) -> QIcon:
        """The geossl icon."""
        return QIcon(str(ICON))

    def load(self) -> bool:
        """Add the geossl environment setting (Processing › Options › Providers › geossl), then the algorithms."""
        ProcessingConfig.settingIcons[self.name()] = self.icon()
        ProcessingConfig.addSetting(Setting(
            self.name(), ENVIRONMENT_SETTING, "geossl environment (a Python virtual environment with geossl "
            "installed, or its Python)", default_environment(), valuetype=Setting.FOLDER))
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        """Remove the setting."""
        ProcessingConfig.removeSetting(ENVIRONMENT_SETTING)

    def loadAlgorithms(self) -> None:  # noqa: N802
        """One algorithm per geossl command."""
        for kind in ALGORITHMS:
            self.addAlgorithm(kind())
