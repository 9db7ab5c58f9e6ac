"""Draw docs/qgis_toolbox.png and docs/qgis_suggest.png in QGIS (``make qgis-screenshots``, on a virtual display).

The toolbox: the Processing Toolbox filtered to geossl. The suggest result: a synthetic scene ingested, a tiny
model trained and windows suggested, all through the plugin's algorithms, then a few labels drawn in the
``labels`` layer inside the first windows, and that layer's attribute form with its class drop-down open.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qgis.core import QgsFeature, QgsFeatureRequest, QgsLayerTreeModel, QgsProject, QgsRectangle
from qgis.gui import (
    QgsAttributeEditorContext,
    QgsAttributeForm,
    QgsFilterLineEdit,
    QgsGui,
    QgsLayerTreeView,
    QgsMapCanvas,
    QgsProcessingToolboxTreeView,
)
from qgis.PyQt.QtCore import QEventLoop, QTimer
from qgis.PyQt.QtWidgets import QApplication, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_processing as t  # noqa: E402 - beside this file

MANIFEST = t.MANIFEST


def _wait(ms: int = 500) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec_()


def toolbox(out: Path) -> None:
    """The Processing Toolbox searched for geossl, as a user finds the provider's algorithms."""
    panel = QWidget()
    layout = QVBoxLayout(panel)
    layout.addWidget(QLabel("<b>Processing Toolbox</b>"))
    search = QgsFilterLineEdit()
    search.setText("geossl")
    layout.addWidget(search)
    view = QgsProcessingToolboxTreeView(None, t.QgsApplication.processingRegistry())
    view.header().hide()
    view.setFilterString("geossl")
    view.expandAll()
    layout.addWidget(view)
    panel.resize(360, 250)
    panel.show()
    _wait()
    panel.grab().save(str(out))


def suggest_result(out: Path, work: Path) -> None:
    """The suggested windows over the image, labels drawn in the first ones, a new polygon's class drop-down open."""
    catalog = work / "catalog"
    t._run("ingest", {"MANIFEST": str(MANIFEST), "DATA_ROOT": str(work / "data"), "WORKERS": 1, "OUTPUT": str(catalog)})
    model = t._run("train", {"MANIFEST": str(MANIFEST), "CATALOG": str(catalog), "CONFIG": str(work / "tiny.yaml"),
                             "MAX_STEPS": 8, "OUTPUT": str(work / "run")})[0]
    _, added = t._run("suggest", {"CHECKPOINT": model["MODEL"], "MANIFEST": str(MANIFEST), "CATALOG": str(catalog),
                                  "N": 6, "OUTPUT": str(work / "round1.gpkg")})
    windows, labels = t._named(added, "round1 windows"), t._named(added, "round1 labels")
    truth = _truth(catalog / "labels" / "scene.tif", work / "truth.gpkg")
    ranked = sorted(windows.getFeatures(), key=lambda f: f["rank"])
    _draw(labels, truth, ranked[:2])
    labels.commitChanges()
    new = _drawing(labels, truth, ranked[2])
    for layer in (truth, _layer("scene labels")):  # only what the map shows stays in the legend
        QgsProject.instance().removeMapLayer(layer.id())
    canvas = QgsMapCanvas()
    canvas.setDestinationCrs(windows.crs())
    canvas.setLayers([labels, windows, _layer("scene image")])
    canvas.setMinimumSize(760, 720)
    form = QgsAttributeForm(labels, new)
    form.setMode(QgsAttributeEditorContext.AddFeatureMode)
    window = _window(canvas, form)
    window.show()
    _wait(500)
    extent = QgsRectangle(windows.extent())
    canvas.setExtent(extent.buffered(max(extent.width(), extent.height()) * 0.08))
    canvas.refreshAllLayers()
    _wait(3000)
    form.findChildren(QComboBox)[0].showPopup()
    _wait(800)
    frame = window.frameGeometry()
    QApplication.primaryScreen().grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height()).save(str(out))


def _truth(raster: Path, out: Path):
    """The scene's labels as polygons (with the plugin's vectorize): what an analyst traces by eye."""
    _, added = t._run("vectorize", {"INPUT": str(raster), "OUTPUT": str(out), "MIN_AREA": 3000, "SIMPLIFY": 10,
                                    "OPTIONS": "--workers 1"})
    return t._named(added, "truth")


def _layer(name: str):
    return t._named(list(QgsProject.instance().mapLayers().values()), name)


def _parts(truth, window) -> list:
    """``(geometry, class id)`` of the truth's polygons inside ``window``."""
    parts = []
    for polygon in truth.getFeatures(QgsFeatureRequest(window.geometry().boundingBox())):
        part = polygon.geometry().intersection(window.geometry())
        if not part.isEmpty() and part.area() >= 400:
            parts.append((part, polygon["class_id"]))
    return parts


def _draw(labels, truth, windows: list) -> None:
    """Trace the truth's polygons inside ``windows`` into ``labels`` (being edited), with their class."""
    labels.startEditing()
    for window in windows:
        for geometry, class_id in _parts(truth, window):
            feature = QgsFeature(labels.fields())
            feature.setGeometry(geometry)
            feature["class"] = class_id
            labels.addFeature(feature)


def _drawing(labels, truth, window) -> QgsFeature:
    """A polygon just drawn in ``window``, its class not chosen yet (inset, so that its outline shows)."""
    labels.startEditing()
    geometry = max(_parts(truth, window), key=lambda p: p[0].area())[0].buffer(-40, 4)
    feature = QgsFeature(labels.fields())
    feature.setGeometry(geometry)
    labels.addFeature(feature)
    return feature


def _window(canvas: QgsMapCanvas, form: QgsAttributeForm) -> QWidget:
    """The map beside the legend and the form of the polygon being drawn."""
    window = QWidget()
    side = QVBoxLayout()
    side.addWidget(QLabel("<b>round1 labels</b>: the form of a polygon just drawn"))
    side.addWidget(form)
    side.addSpacing(190)  # room for the open drop-down
    legend = QgsLayerTreeView()
    legend.setModel(QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), legend))
    legend.expandAll()
    side.addWidget(QLabel("<b>Layers</b>"))
    side.addWidget(legend, 1)
    holder = QWidget()
    holder.setLayout(side)
    holder.setFixedWidth(380)
    layout = QHBoxLayout(window)
    layout.addWidget(canvas, 1)
    layout.addWidget(holder)
    return window


def main() -> None:
    """``screenshots.py DOCS_FOLDER``."""
    docs = Path(sys.argv[1]).resolve()
    docs.mkdir(parents=True, exist_ok=True)
    t.start(gui=True, size=512)
    QgsGui.editorWidgetRegistry().initEditors()  # the attribute form's drop-down
    try:
        toolbox(docs / "qgis_toolbox.png")
        suggest_result(docs / "qgis_suggest.png", t.WORK)
    finally:
        t.tearDownModule()


if __name__ == "__main__":
    main()
