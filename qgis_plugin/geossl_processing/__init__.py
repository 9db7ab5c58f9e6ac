"""geossl's commands as a QGIS Processing provider (QGIS loads the plugin through :func:`classFactory`).

Nothing here imports QGIS at import time, so :mod:`.protocol` can be read outside QGIS (by geossl's tests).
"""


def classFactory(iface):  # noqa: N802 - the name QGIS calls
    """The plugin object QGIS keeps for this plugin."""
    from .plugin import GeosslPlugin

    return GeosslPlugin(iface)
