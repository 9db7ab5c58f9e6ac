"""The plugin QGIS loads: it registers the geossl Processing provider, and nothing else."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import GeosslProvider


class GeosslPlugin:
    """Adds :class:`GeosslProvider` to the Processing registry while the plugin is loaded."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None

    def initProcessing(self) -> None:  # noqa: N802 - QGIS's names
        """Register the provider (QGIS calls this without a GUI too, e.g. for qgis_process)."""
        if self.provider is None:
            self.provider = GeosslProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        """The provider is all the plugin adds to the GUI."""
        self.initProcessing()

    def unload(self) -> None:
        """Unregister the provider."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
