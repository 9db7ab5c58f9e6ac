"""``geossl predict``: checkpoint + scenes in, blended class / confidence / probability COGs out.

Steps: load the checkpoint (``weights_only``) → check every scene against it (readable, CRS, band count and
order) → check the output folder → cut each scene into column blocks (:func:`geossl.windows.column_blocks`) →
predict the blocks, in this process one after another (``scheduler="synchronous"``) or fanned out over Dask →
per scene, mosaic the blocks' pieces into COGs, write the QGIS style and a STAC Item → move everything into
the output folder. The plan (blocks, windows, batches) depends only on the scene and the options, never on the
scheduler, so every scheduler writes the same pixels. Everything is built in a staging folder first: a failure
leaves the output folder as it was.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from distributed import Client, Future, as_completed

from geossl.errors import InputError
from geossl.io.atomic import publish, staging_dir, write_text_atomic
from geossl.io.cog import Compression
from geossl.io.style import raster_qml
from geossl.models import ModelBundle
from geossl.parallel import use_client
from geossl.predict import encode
from geossl.predict.block import CANCEL_MARK, BlockStats, BlockTask, predict_block
from geossl.predict.metadata import model_description, scene_item
from geossl.predict.options import PredictOptions
from geossl.predict.runner import CheckpointModel, ModelSource, available_cores
from geossl.predict.scene import Scene, open_scenes
from geossl.predict.writers import OutputKind, output_kinds, write_output
from geossl.progress import ProgressBar
from geossl.windows import WindowGrid, column_blocks

log = logging.getLogger(__name__)

SYNCHRONOUS = "synchronous"
#: The key of a scene's STAC Item among its files (:func:`scene_files`); every other key is an asset of the Item.
METADATA = "metadata"
#: GDAL block cache of a prediction process (reads and COG writes): bounds its memory whatever the scene size.
CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SceneJob:
    """A scene's blocks and where its outputs go (file names relative to the staging folder)."""

    scene: Scene
    blocks: tuple[BlockTask, ...]
    kinds: tuple[OutputKind, ...]
    files: dict[str, str]
    stage: Path
    compress: Compression
    model: dict[str, Any]
    prediction: dict[str, Any]


def item_file(scene_id: str) -> str:
    """The file name of a scene's STAC Item in the output folder."""
    return f"{scene_id}.json"


def scene_files(scene_id: str, kinds: tuple[OutputKind, ...]) -> dict[str, str]:
    """The file names of a scene's outputs, by key.

    ``<scene>_<kind>.tif`` per output raster (``classes``, ``confidence``, ``probabilities``), ``style``
    (``<scene>_classes.qml``) and ``metadata`` (the STAC Item, :func:`item_file`). The Item's assets name all but
    the Item itself, so a reader takes the other files from there.
    """
    files = {kind.name: f"{scene_id}_{kind.name}.tif" for kind in kinds}
    files["style"] = f"{scene_id}_classes.qml"
    files[METADATA] = item_file(scene_id)
    return files


def window_geometry(bundle: ModelBundle, options: PredictOptions, stride: int) -> tuple[int, int]:
    """Window size and overlap: the checkpoint's unless overridden; the size a multiple of the model's stride."""
    size = options.patch_size or bundle.patch_size
    overlap = bundle.overlap if options.overlap is None else options.overlap
    where = "--patch-size" if options.patch_size else "checkpoint patch_size"
    if size % stride:
        raise InputError(where, f"{size} is not a multiple of the model's stride {stride}")
    if not 0 <= overlap < size:
        raise InputError("--overlap" if options.overlap is not None else "checkpoint overlap",
                         f"{overlap} must be smaller than the window size {size}")
    return size, overlap


@contextmanager
def output_stage(out: Path) -> Iterator[Path]:
    """A staging folder for the outputs: inside ``out`` when it exists, else beside it (then renamed to it)."""
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise InputError(out, "output exists and is not a folder")
    with staging_dir(out / ".predict" if out.is_dir() else out, named=out) as stage:
        yield stage


def plan(scenes: list[Scene], bundle: ModelBundle, size: int, overlap: int, options: PredictOptions, stage: Path,
         model: dict[str, Any]) -> list[SceneJob]:
    """Every scene's blocks and outputs."""
    coding = encode.ClassCoding.of(bundle.classes, bundle.ignore_id)
    kinds = output_kinds(bundle.classes, coding, options.probabilities)
    threads = options.threads or available_cores()
    jobs = []
    for scene in scenes:
        grid = WindowGrid(scene.height, scene.width, size, overlap)
        pieces_dir = stage / ".pieces" / scene.id
        pieces_dir.mkdir(parents=True)
        blocks = tuple(
            BlockTask(scene=scene, index=k, col0=c0, col1=c1, size=size, overlap=overlap, bundle=bundle,
                      kinds=kinds, pieces=tuple(pieces_dir / f"{k:04d}.{kind.name}.tif" for kind in kinds),
                      stage=stage, threads=threads, batch_size=options.batch_size, tta=options.tta,
                      device=options.device, cache_bytes=CACHE_BYTES)
            for k, (c0, c1) in enumerate(column_blocks(grid, max(options.block_width, size)))
        )
        files = scene_files(scene.id, kinds)
        prediction = {"patch_size": size, "overlap": overlap, "blend": "hann", "tta": options.tta,
                      "batch_size": options.batch_size, "threads": threads, "windows": len(grid),
                      "blocks": len(blocks),
                      "nodata": None if scene.nodata is None or math.isnan(scene.nodata) else scene.nodata}
        jobs.append(SceneJob(scene=scene, blocks=blocks, kinds=kinds, files=files, stage=stage,
                             compress=options.compress, model=model, prediction=prediction))
    return jobs


def finish_scene(job: SceneJob, stats: list[BlockStats]) -> dict[str, Any]:
    """Mosaic the blocks' pieces into the scene's COGs; write the QGIS style and the STAC Item; return the Item."""
    bundle = job.blocks[0].bundle
    for i, kind in enumerate(job.kinds):
        pieces = [(b.pieces[i], b.col0) for b in job.blocks]
        write_output(kind, pieces, job.scene.grid, job.stage / job.files[kind.name], bundle.classes, job.compress,
                     CACHE_BYTES)
    shutil.rmtree(job.stage / ".pieces" / job.scene.id)
    write_text_atomic(job.stage / job.files["style"], raster_qml(bundle.classes))
    class_pixels = [sum(int(s.class_pixels[k]) for s in stats) for k in range(len(bundle.classes))]
    valid = sum(class_pixels)
    prediction = {**job.prediction, "windows_run": sum(s.windows for s in stats),
                  "windows_skipped_nodata": sum(s.skipped for s in stats),
                  "model_seconds": round(sum(s.model_seconds for s in stats), 3)}
    assets = {k: v for k, v in job.files.items() if k != METADATA}
    item = scene_item(job.scene, bundle, job.model, assets, prediction, class_pixels,
                      round(sum(s.confidence_sum for s in stats) / valid, 4) if valid else None)
    write_text_atomic(job.stage / job.files[METADATA], json.dumps(item, indent=1))
    return item


def predict(checkpoint: str | Path, scenes: list[Path], options: PredictOptions, client: Client | None = None
            ) -> list[dict[str, Any]]:
    """Predict ``scenes`` with a geossl checkpoint; return each scene's STAC Item. Raises :class:`InputError`.

    An Item's ``assets`` name the scene's files in ``options.out`` (:func:`scene_files`). ``client``: a Dask
    client to run on (a pipeline run's), else one is started from ``options``.
    """
    checkpoint = Path(checkpoint)
    source = CheckpointModel(str(checkpoint.absolute()))
    bundle, model = source.open()
    return predict_with(bundle, source, scenes, options, stride=getattr(model, "stride", 1),
                        model_info=model_description(bundle, checkpoint), client=client)


def predict_with(bundle: ModelBundle, source: ModelSource, scenes: list[Path], options: PredictOptions,
                 stride: int = 1, model_info: dict[str, Any] | None = None, client: Client | None = None
                 ) -> list[dict[str, Any]]:
    """Predict ``scenes`` with the network from ``source`` described by ``bundle`` (the API under the CLI)."""
    if not scenes:
        raise InputError("SCENE", "no scene given")
    size, overlap = window_geometry(bundle, options, stride)
    if options.device == "cuda" and options.scheduler in (None, SYNCHRONOUS) and not torch.cuda.is_available():
        raise InputError("--device", "cuda asked for but torch sees no CUDA device here")
    opened = open_scenes([Path(p) for p in scenes], bundle, options.ignore_band_names, options.resample)
    out = options.out.absolute()
    start = time.perf_counter()
    with output_stage(out) as stage:
        jobs = plan(opened, bundle, size, overlap, options, stage, model_info or model_description(bundle, None))
        log.info("predicting %d scene(s), %d block(s), windows of %d px overlapping by %d", len(jobs),
                 sum(len(j.blocks) for j in jobs), size, overlap)
        if options.scheduler == SYNCHRONOUS:
            items = _run_here(jobs, source, options.quiet)
        else:
            items = _run_dask(jobs, source, options, stage, client)
        shutil.rmtree(stage / ".pieces", ignore_errors=True)
        files = [f for job in jobs for f in job.files.values()]
        publish(stage, out, files)
    log.info("predicted %d scene(s) into %s in %.1f s", len(jobs), out, time.perf_counter() - start)
    return items


def _run_here(jobs: list[SceneJob], source: ModelSource, quiet: bool) -> list[dict[str, Any]]:
    items = []
    with ProgressBar(sum(len(j.blocks) for j in jobs), "predicting blocks", "block", quiet) as bar:
        for job in jobs:
            stats = []
            for task in job.blocks:
                stats.append(predict_block(task, source))
                bar.update()
            items.append(finish_scene(job, stats))
    return items


def _run_dask(jobs: list[SceneJob], source: ModelSource, options: PredictOptions, stage: Path,
              client: Client | None) -> list[dict[str, Any]]:
    """Blocks of every scene as Dask tasks; a scene's COGs are written by a task that waits for its blocks.

    Locally one block runs at a time unless ``--workers`` says more, on a cluster of our own or on the one a
    pipeline run shares between its steps (``client``); on an existing cluster (``--scheduler``), each worker runs
    as many blocks as it has threads. Either way each block's model uses ``options.threads`` CPU threads.
    """
    with use_client(client, options.scheduler, options.workers or 1) as client:
        shared = client.scatter(source, broadcast=True, hash=False)
        limit = None if options.scheduler else options.workers or 1
        submitted: list[Future[Any]] = []
        try:
            items = _run_in_order(client, jobs, shared, limit, submitted, options.quiet)
        except BaseException:
            (stage / CANCEL_MARK).touch()  # running blocks stop at their next window row
            client.cancel(submitted)
            _wait_idle(client)
            raise
        return [items[job.scene.id] for job in jobs]


def _run_in_order(client: Client, jobs: list[SceneJob], shared: Any, limit: int | None,
                  submitted: list[Future[Any]], quiet: bool) -> dict[str, dict[str, Any]]:
    """Run each scene's blocks, then the task that mosaics them, scene after scene; return the Items by scene.

    Tasks are submitted in that order with at most ``limit`` unfinished at once (all at once when None): the
    rest wait here, not on the cluster, so a cluster with more threads (a pipeline run's) runs as many blocks at
    once as one of ``limit`` threads would. Every future submitted is appended to ``submitted``.
    """
    todo: deque[tuple[SceneJob, BlockTask | None]] = deque(
        (job, task) for job in jobs for task in (*job.blocks, None))
    running = as_completed()
    blocks: list[Future[Any]] = []
    finals: dict[Any, SceneJob] = {}
    items: dict[str, dict[str, Any]] = {}

    def top_up() -> None:
        while todo and (limit is None or running.count() < limit):
            job, task = todo.popleft()
            future: Future[Any]
            if task is None:  # every block of the scene is submitted: its mosaic task waits for them
                future = client.submit(finish_scene, job, list(blocks), pure=False)
                finals[future.key] = job
                blocks.clear()
            else:
                future = client.submit(predict_block, task, shared, pure=False)
                blocks.append(future)
            submitted.append(future)
            running.add(future)

    with ProgressBar(len(todo), "predicting blocks", "task", quiet) as bar:
        top_up()
        for future in running:
            result = future.result()
            if future.key in finals:
                items[finals[future.key].scene.id] = result
            bar.update()
            top_up()
    return items


def _wait_idle(client: Any, timeout: float = 120.0) -> None:
    """Wait until no worker executes a task (cancelled tasks keep running until they notice)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            busy = client.run(lambda dask_worker: len(dask_worker.state.executing))
        except Exception:  # noqa: BLE001 - a cluster that is going away is idle enough
            return
        if not any(busy.values()):
            return
        time.sleep(0.2)
