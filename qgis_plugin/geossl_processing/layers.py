"""Outputs loaded into the project when an algorithm finishes, with the styles geossl wrote for them.

Processing loads a finished algorithm's layers without their default style, then calls each layer's
post-processor: :class:`Styled` loads the style geossl wrote (a ``.qml`` beside a raster, the ``layer_styles``
table of a GeoPackage), shows an image in true colour when its bands are named red, green and blue, and puts
imagery at the bottom of the layer tree. For ``geossl suggest``'s GeoPackage it also makes the project ready to
draw in the ``labels`` layer: snapping to the windows' and the labels' vertices and edges, and new polygons cut
out of the labels already drawn (so polygons of different classes never overlap, which ingest refuses).
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingUtils,
    QgsProject,
    QgsRasterLayer,
    QgsSnappingConfig,
    QgsTolerance,
    QgsVectorLayer,
)

from .protocol import LABEL_LAYER

#: Snapping tolerance, in screen pixels.
SNAP_PIXELS = 12
TRUE_COLOUR = ("red", "green", "blue")

# Processing keeps only a pointer to a post-processor: the objects must outlive the algorithm that made them.
_KEPT: list = []


class Styled(QgsProcessingLayerPostProcessorInterface):
    """Loads a layer's default style; imagery goes to the bottom, drawn labels to the top; snaps for drawing."""

    def __init__(self, role: str = "") -> None:
        super().__init__()
        self.role = role

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802 - QGIS's name
        """Style ``layer`` (module docstring)."""
        message, loaded = layer.loadDefaultStyle()
        if not loaded and feedback is not None:
            feedback.pushDebugInfo(f"{layer.source()}: no style of its own ({message})")
        if self.role == "image":
            _true_colour(layer)
        project = context.project() or QgsProject.instance()
        if self.role == "image":
            _move(project, layer, top=False)
        if self.role in ("windows", "labels"):
            ready_to_draw(project)
        layer.triggerRepaint()


def load(context: QgsProcessingContext, uri: str, name: str, role: str = "", vector: bool = False) -> None:
    """Load ``uri`` as ``name`` when the algorithm has finished, styled by :class:`Styled` (``role``: see there)."""
    details = QgsProcessingContext.LayerDetails(name, context.project(), name)
    details.layerTypeHint = QgsProcessingUtils.LayerHint.Vector if vector else QgsProcessingUtils.LayerHint.UnknownType
    post = Styled(role)
    _KEPT.append(post)
    details.setPostProcessor(post)
    context.addLayerToLoadOnCompletion(uri, details)


def load_suggestions(context: QgsProcessingContext, gpkg: Path) -> None:
    """Load suggest's windows and its label layer (both from ``gpkg``)."""
    load(context, f"{gpkg}|layername={gpkg.stem}", f"{gpkg.stem} windows", "windows", vector=True)
    load(context, f"{gpkg}|layername={LABEL_LAYER}", f"{gpkg.stem} labels", "labels", vector=True)


def ready_to_draw(project: QgsProject) -> None:
    """Snap to suggest's windows and labels, and cut new labels out of those drawn (module docstring)."""
    layers = [lyr for lyr in project.mapLayers().values() if isinstance(lyr, QgsVectorLayer)]
    labels = [lyr for lyr in layers if lyr.source().endswith(f"|layername={LABEL_LAYER}")]
    files = {lyr.source().split("|")[0] for lyr in labels}
    windows = [lyr for lyr in layers if lyr.source() in {f"{f}|layername={Path(f).stem}" for f in files}]
    config = project.snappingConfig()
    config.setEnabled(True)
    config.setMode(QgsSnappingConfig.AdvancedConfiguration)
    for layer in labels + windows:
        config.setIndividualLayerSettings(layer, QgsSnappingConfig.IndividualLayerSettings(
            True, QgsSnappingConfig.VertexFlag | QgsSnappingConfig.SegmentFlag, SNAP_PIXELS, QgsTolerance.Pixels,
            0.0, 0.0))
    project.setSnappingConfig(config)
    project.setAvoidIntersectionsMode(QgsProject.AvoidIntersectionsMode.AvoidIntersectionsLayers)
    project.setAvoidIntersectionsLayers(labels)
    for layer in labels:
        _move(project, layer, top=True)


def _true_colour(layer) -> None:
    """Show ``layer`` as red, green, blue from the bands of those names, stretched min-max, when it has them."""
    if not isinstance(layer, QgsRasterLayer):
        return
    provider = layer.dataProvider()
    described = [layer.bandName(b).split(":")[-1].strip().lower() for b in range(1, layer.bandCount() + 1)]
    if not all(c in described for c in TRUE_COLOUR):
        return
    bands = [described.index(c) + 1 for c in TRUE_COLOUR]
    renderer = QgsMultiBandColorRenderer(provider, *bands)
    enhancements = []
    for band in bands:
        enhancement = QgsContrastEnhancement(provider.dataType(band))
        enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum, True)
        stats = provider.cumulativeCut(band, 0.02, 0.98, sampleSize=250000)
        enhancement.setMinimumValue(stats[0])
        enhancement.setMaximumValue(stats[1])
        enhancements.append(enhancement)
    renderer.setRedContrastEnhancement(enhancements[0])
    renderer.setGreenContrastEnhancement(enhancements[1])
    renderer.setBlueContrastEnhancement(enhancements[2])
    layer.setRenderer(renderer)


def _move(project: QgsProject, layer, top: bool) -> None:
    """Move ``layer``'s node to the top (or the bottom) of its group in the layer tree."""
    node = project.layerTreeRoot().findLayer(layer.id())
    if node is None:
        return
    parent = node.parent()
    clone = node.clone()
    parent.insertChildNode(0 if top else -1, clone)
    parent.removeChildNode(node)
