"""The run loop: lock the run directory, walk the steps in order, skip what is done, record what finishes.

Each step is a :class:`~geossl.pipeline.steps.Step`: it names what decides its outputs (:meth:`digest`) and
produces them (:meth:`run`, or :meth:`run_scene` per scene for scene-level steps, fanned out over Dask). A
step's digest covers its options and the fingerprints of its inputs, which are the outputs of the steps
before it, so changing one step's options re-runs that step and whatever consumes its outputs, nothing else.

Testing resumability: ``GEOSSL_KILL_AT=STEP:N`` kills the run with SIGKILL when the N-th unit of work of STEP
starts (a prediction block, a vectorize tile), and ``GEOSSL_KILL_AT=STEP:written`` when STEP (a scene-level
step: its first scene) has written its outputs but not yet recorded them in ``state.json``; see
:mod:`geossl.killpoint`. A test can so stop a run at an exact place, whatever the machine's speed.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from geossl import killpoint
from geossl.io.atomic import write_text_atomic
from geossl.pipeline.context import RunContext
from geossl.pipeline.lock import run_lock
from geossl.pipeline.state import RunState, is_done, make_record
from geossl.pipeline.steps import STEP_ORDER, Step, build_steps

log = logging.getLogger(__name__)
SUMMARY_NAME = "summary.json"


def run_pipeline(ctx: RunContext, force: set[str] | None = None) -> dict[str, Any]:
    """Run every configured step; return the summary (also written to ``RUN_DIR/summary.json``)."""
    force = force or set()
    unknown = force - set(STEP_ORDER)
    if unknown:
        from geossl.errors import InputError

        raise InputError("--force", f"unknown step(s) {sorted(unknown)}; steps are {', '.join(STEP_ORDER)}")
    killpoint.target(STEP_ORDER)  # a malformed GEOSSL_KILL_AT stops here, before anything runs
    summary: dict[str, Any] = {"pipeline": ctx.config.name, "run_dir": str(ctx.run_dir), "steps": {},
                               "status": "running"}
    started = time.perf_counter()
    with run_lock(ctx.run_dir), ctx:
        _remove_leftovers(ctx.run_dir)
        state = RunState.load(ctx.run_dir)
        try:
            for step in build_steps(ctx):
                with killpoint.in_step(step.name):
                    result = _run_step(ctx, state, step, step.name in force)
                summary["steps"][step.name] = ctx.step_results[step.name] = result
            summary["status"] = "ok"
        except BaseException:
            summary["status"] = "failed"
            raise
        finally:
            summary["seconds"] = round(time.perf_counter() - started, 2)
            summary["outputs"] = ctx.outputs
            summary["metrics"] = ctx.metrics
            write_text_atomic(ctx.run_dir / SUMMARY_NAME, json.dumps(summary, indent=2, default=str))
    return summary


def _remove_leftovers(run_dir: Path) -> None:
    """Delete temporary files and staging folders a killed run left behind (safe: we hold the lock)."""
    for path in sorted(run_dir.rglob(".*"), key=lambda p: len(p.parts), reverse=True):
        if ".tmp-" in path.name or ".staging-" in path.name:
            log.info("removing %s, left by an interrupted run", path)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _run_step(ctx: RunContext, state: RunState, step: Step, force: bool) -> dict[str, Any]:
    digest = step.digest()
    record = state.step(step.name)
    if not force and is_done(record.record, digest, ctx.run_dir):
        log.info("%s: up to date, skipped", step.name)
        step.restore(record.record)
        return {"status": "skipped", "seconds": 0.0}
    log.info("%s: running", step.name)
    started = time.perf_counter()
    if step.scene_level:
        outputs = _run_scenes(ctx, state, step, digest, force)
    else:
        outputs = step.run()
        killpoint.reached(killpoint.WRITTEN)
    record.record = make_record(digest, ctx.run_dir, outputs, time.perf_counter() - started, **step.info())
    state.save(ctx.run_dir)
    step.restore(record.record)
    seconds = round(time.perf_counter() - started, 2)
    log.info("%s: done in %.1f s", step.name, seconds)
    return {"status": "done", "seconds": seconds}


def _run_scenes(ctx: RunContext, state: RunState, step: Step, digest: str, force: bool) -> list[Path]:
    """Run the step's scenes that are not done, recording each as it finishes.

    Scenes run one after another; within a scene the work (prediction blocks, vectorization tiles) fans out
    over the run's Dask cluster. A run killed mid-step redoes only the scenes it had not finished.
    """
    record = state.step(step.name)
    outputs: list[Path] = []
    for scene in step.scenes():
        scene_digest = f"{digest}:{scene}"
        prior = record.scenes.get(scene)
        if not force and is_done(prior, scene_digest, ctx.run_dir):
            log.info("%s: scene %s up to date", step.name, scene)
            outputs.extend(ctx.run_dir / rel for rel in prior.outputs)  # type: ignore[union-attr]
            continue
        started = time.perf_counter()
        paths = step.run_scene(scene)
        killpoint.reached(killpoint.WRITTEN)
        record.scenes[scene] = make_record(scene_digest, ctx.run_dir, paths, time.perf_counter() - started)
        state.save(ctx.run_dir)
        outputs.extend(paths)
        log.info("%s: scene %s done", step.name, scene)
    return outputs
