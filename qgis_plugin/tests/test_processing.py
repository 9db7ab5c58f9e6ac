# ruff: noqa: D102 - the test names say what they check
"""The plugin in real QGIS: built as a zip, installed, each algorithm run by ``processing`` on a synthetic scene.

Run by QGIS's Python, not the project's virtual environment (``make qgis-test``)::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 -m unittest discover -s qgis_plugin/tests -v

Skipped when QGIS is not importable. geossl runs from this checkout with the repository's ``.venv``
(:func:`_environment`); the tests run in order, each using what the one before wrote (a tiny model, trained
for a few steps).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
TINY = "encoder: tu-test_resnet\ndecoder_channels: [16, 8, 8, 8, 8]\npatch_size: 64\nbatch_size: 2\n" \
       "steps_per_epoch: 4\nthreads: 1\n"
QGIS_PLUGINS = Path("/usr/share/qgis/python/plugins")

try:
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingException,
        QgsProcessingFeedback,
        QgsProject,
    )
except ImportError:  # pragma: no cover - without QGIS there is nothing to test
    QgsApplication = None


def setUpModule() -> None:  # noqa: N802 - unittest's name
    """Start QGIS and Processing, install the built plugin, write the synthetic scene."""
    if QgsApplication is None:
        raise unittest.SkipTest("QGIS's Python bindings are not importable")
    if not VENV_PYTHON.is_file():
        raise unittest.SkipTest(f"{VENV_PYTHON} is missing: run make env first")
    start()


def start(gui: bool = False, size: int = 256) -> None:
    """QGIS (with its GUI or not), Processing, the built plugin, and a synthetic scene of ``size`` px."""
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if gui else "offscreen")
    global APP, WORK, PLUGIN
    APP = QgsApplication([], gui)
    APP.initQgis()
    sys.path.append(str(QGIS_PLUGINS))
    from processing.core.Processing import Processing

    Processing.initialize()
    WORK = Path(tempfile.mkdtemp(prefix="geossl-qgis-"))
    PLUGIN = _install(WORK)
    from processing.core.ProcessingConfig import ProcessingConfig

    ProcessingConfig.setSettingValue("GEOSSL_ENVIRONMENT", str(_environment(WORK)))
    _geossl("synth", WORK / "data", "--size", str(size), "--tile", "128", "--seed", "3")
    (WORK / "tiny.yaml").write_text(TINY)


def tearDownModule() -> None:  # noqa: N802
    """Remove what the tests wrote."""
    shutil.rmtree(WORK, ignore_errors=True)


def _install(folder: Path):
    """Build the zip as ``make qgis-plugin`` does, unpack it as QGIS installs it, load the plugin."""
    sys.path.insert(0, str(ROOT / "qgis_plugin"))
    from build import build

    sys.path.pop(0)
    archive = build(folder / "geossl_processing.zip", ROOT)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(folder / "plugins")
    sys.path.insert(0, str(folder / "plugins"))
    import geossl_processing

    assert Path(geossl_processing.__file__).parent == folder / "plugins" / "geossl_processing"
    plugin = geossl_processing.classFactory(None)
    plugin.initProcessing()
    return plugin


def _environment(folder: Path) -> Path:
    """A virtual environment's layout whose Python is the repository's, importing this checkout's geossl.

    The repository's ``.venv`` may have geossl installed from another checkout; the plugin clears PYTHONPATH
    (QGIS's own), so the path is set inside the environment's Python.
    """
    python = folder / "env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec nice -n 10 "{VENV_PYTHON}" "$@"\n')
    python.chmod(0o755)
    return python.parent.parent


def _geossl(*arguments) -> None:
    """Run geossl's command line in the test environment (to make inputs)."""
    import subprocess

    subprocess.run([str(WORK / "env" / "bin" / "python"), "-m", "geossl.cli", "-q", *map(str, arguments)],
                   check=True, capture_output=True)


class Recorder(QgsProcessingFeedback if QgsApplication is not None else object):
    """A feedback that keeps the progress (with its text), the texts and the errors; cancels at ``cancel_at`` %."""

    def __init__(self, cancel_at: float | None = None) -> None:
        super().__init__()
        self.values, self.texts, self.errors, self.cancel_at = [], [], [], cancel_at
        self.progressChanged.connect(self._progress)

    def _progress(self, value: float) -> None:
        self.values.append((value, self.texts[-1] if self.texts else ""))
        if self.cancel_at is not None and value >= self.cancel_at:
            self.cancel()

    def setProgressText(self, text: str) -> None:  # noqa: N802
        self.texts.append(text)
        super().setProgressText(text)

    def reportError(self, error: str, fatalError: bool = False) -> None:  # noqa: N802, N803
        self.errors.append(error)
        super().reportError(error, fatalError)


def _run(algorithm: str, parameters: dict, feedback: QgsProcessingFeedback | None = None) -> tuple[dict, list]:
    """Run ``geossl:ALGORITHM`` as the toolbox does; return its results and the layers it added to the project."""
    import processing

    before = set(QgsProject.instance().mapLayers())
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    results = processing.runAndLoadResults(f"geossl:{algorithm}", parameters, feedback=feedback or Recorder(),
                                           context=context)
    added = [layer for key, layer in QgsProject.instance().mapLayers().items() if key not in before]
    return results, added


def _named(layers: list, name: str):
    (layer,) = [lyr for lyr in layers if lyr.name() == name]
    return layer


class ProcessingAlgorithms(unittest.TestCase):
    """Each algorithm on the synthetic scene, in the order of the labelling loop."""

    state: dict = {}

    def test_0_the_toolbox_holds_one_algorithm_per_command(self):
        provider = QgsApplication.processingRegistry().providerById("geossl")
        ids = sorted(alg.id() for alg in provider.algorithms())
        self.assertEqual(ids, sorted(f"geossl:{c}" for c in ("ingest", "train", "suggest", "predict", "vectorize",
                                                             "run")))
        from geossl_processing.environment import default_environment

        self.assertEqual(default_environment(), str(ROOT / ".venv"))  # from the zip's repository.txt

    def test_1_ingest_loads_the_image_in_true_colour_and_the_labels_with_their_palette(self):
        feedback = Recorder()
        results, added = _run("ingest", {"MANIFEST": str(MANIFEST), "DATA_ROOT": str(WORK / "data"),
                                         "WORKERS": 1, "OUTPUT": str(WORK / "catalog")}, feedback)
        self.assertEqual(results["CATALOG"], str(WORK / "catalog" / "catalog.json"))
        image, labels = _named(added, "scene image"), _named(added, "scene labels")
        renderer = image.renderer()
        self.assertEqual(renderer.type(), "multibandcolor")
        self.assertEqual((renderer.redBand(), renderer.greenBand(), renderer.blueBand()), (3, 2, 1))
        self.assertEqual(labels.renderer().type(), "paletted")
        self.assertEqual([c.label for c in labels.renderer().classes()],
                         ["Water", "Developed", "Bare", "Forest", "Grassland", "Cropland"])
        self.assertIn("writing COGs", feedback.texts)
        self.assertEqual(QgsProject.instance().layerTreeRoot().layerOrder()[-1].id(), image.id())  # at the bottom
        self.state["image"] = image

    def test_2_train_reports_its_steps_as_progress(self):
        feedback = Recorder()
        results, added = _run("train", {"MANIFEST": str(MANIFEST), "CATALOG": str(WORK / "catalog"),
                                        "CONFIG": str(WORK / "tiny.yaml"), "MAX_STEPS": 4,
                                        "OUTPUT": str(WORK / "run")}, feedback)
        self.assertTrue(Path(results["MODEL"]).is_file() and added == [])
        training = [value for value, text in feedback.values if text == "training"]
        self.assertEqual(training, sorted(training))
        self.assertEqual((len(training), training[-1]), (4, 100.0))  # a line per step
        self.state["model"] = results["MODEL"]

    def test_3_suggest_loads_the_windows_and_a_layer_ready_to_draw_labels_in(self):
        out = WORK / "round1.gpkg"
        results, added = _run("suggest", {"CHECKPOINT": self.state["model"], "MANIFEST": str(MANIFEST),
                                          "CATALOG": str(WORK / "catalog"), "N": 3, "SIZE": 32, "OUTPUT": str(out),
                                          "OPTIONS": "--threads 1"})
        self.assertEqual(results["OUTPUT"], str(out))
        windows, labels = _named(added, "round1 windows"), _named(added, "round1 labels")
        self.assertEqual((windows.featureCount(), windows.renderer().type()), (3, "graduatedSymbol"))
        self.assertEqual((labels.featureCount(), labels.renderer().type()), (0, "categorizedSymbol"))
        widget = labels.editorWidgetSetup(labels.fields().indexOf("class"))
        self.assertEqual(widget.type(), "ValueMap")
        self.assertEqual(widget.config()["map"][0], {"Water": "1"})
        project = QgsProject.instance()
        snapping = project.snappingConfig()
        self.assertTrue(snapping.enabled())
        self.assertTrue(all(snapping.individualLayerSettings(lyr).enabled() for lyr in (windows, labels)))
        self.assertEqual([lyr.id() for lyr in project.avoidIntersectionsLayers()], [labels.id()])
        self.assertEqual(project.layerTreeRoot().layerOrder()[0].id(), labels.id())  # on top

    def test_4_predict_loads_the_class_raster_with_its_palette(self):
        out = WORK / "predicted"
        results, added = _run("predict", {"CHECKPOINT": self.state["model"], "SCENES": [self.state["image"]],
                                          "OUTPUT": str(out), "OPTIONS": "--threads 1"})
        classes = _named(added, "scene_classes")
        self.assertEqual(results["CLASSES"], [str(out / "scene_classes.tif")])
        self.assertEqual((classes.renderer().type(), len(classes.renderer().classes())), ("paletted", 6))
        self.state["classes"] = classes

    def test_5_vectorize_loads_the_polygons_with_the_class_colours(self):
        out = WORK / "polygons.gpkg"
        results, added = _run("vectorize", {"INPUT": self.state["classes"], "OUTPUT": str(out), "MIN_AREA": 500,
                                            "OPTIONS": "--workers 1"})
        polygons = _named(added, "polygons")
        self.assertGreater(polygons.featureCount(), 0)
        self.assertEqual(polygons.renderer().type(), "categorizedSymbol")
        self.assertEqual(polygons.renderer().classAttribute(), "class_id")

    def test_6_a_pipeline_loads_what_its_steps_wrote(self):
        pipeline = WORK / "pipeline.yaml"
        pipeline.write_text(json.dumps({
            "name": "qgis", "manifest": str(MANIFEST), "data_root": str(WORK / "data"),
            "steps": {"train": {"checkpoint": self.state["model"]}, "suggest": {"n": 2, "size": 32, "threads": 1},
                      "predict": {"batch_size": 4}, "vectorize": {}, "report": {"quicklook_size": 128}}}))
        feedback = Recorder()
        results, added = _run("run", {"PIPELINE": str(pipeline), "OUTPUT": str(WORK / "pipeline_run")}, feedback)
        self.assertTrue(Path(results["REPORT"]).is_file())
        self.assertEqual(sorted(lyr.name() for lyr in added),
                         ["scene", "scene_classes", "suggestions labels", "suggestions windows"])
        steps = ["ingest", "train", "suggest", "predict", "vectorize", "report", "done"]
        self.assertEqual(list(dict.fromkeys(t for t in feedback.texts if t in steps)), steps)  # in order
        starts = [v for v, t in feedback.values if t in steps]
        self.assertEqual((starts, starts[-1]), (sorted(starts), 100.0))  # each step its share of the bar

    def test_7_a_refusal_shows_geossl_s_one_line(self):
        feedback = Recorder()
        missing = WORK / "nowhere"
        with self.assertRaises(QgsProcessingException) as caught:
            _run("ingest", {"MANIFEST": str(MANIFEST), "DATA_ROOT": str(missing), "OUTPUT": str(WORK / "c2")},
                 feedback)
        line = f"Error: {missing}: data root is not a folder"
        self.assertEqual(str(caught.exception), line)
        self.assertIn(line, feedback.errors)

    def test_8_cancel_stops_geossl(self):
        out = WORK / "cancelled"
        feedback = Recorder(cancel_at=0.1)
        with self.assertRaises(QgsProcessingException) as caught:
            _run("train", {"MANIFEST": str(MANIFEST), "CATALOG": str(WORK / "catalog"),
                           "CONFIG": str(WORK / "tiny.yaml"), "MAX_STEPS": 100000, "OUTPUT": str(out)}, feedback)
        self.assertIn("Canceled", str(caught.exception))
        running = [p for p in Path("/proc").iterdir() if p.name.isdigit() and str(out).encode()
                   in _cmdline(p)]
        self.assertEqual(running, [])
        self.assertFalse((out / "model.pt").exists())


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:
        return b""


if __name__ == "__main__":
    unittest.main()
