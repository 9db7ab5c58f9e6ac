"""The run loop: lock the run directory, walk the steps in order, skip what is done, record what finishes.

Each step is a :class:`~geossl.pipeline.base.Step`: it names what decides its outputs (its options and input
files, hashed into its digest) and produces them (:meth:`run`, or :meth:`run_scene` per scene for scene-level
steps), returning a typed output that the runner records in ``state.json`` and hands to the steps after it
(:class:`~geossl.pipeline.outputs.Results`). A step whose digest and outputs are unchanged is skipped and hands
on its recorded output instead. A step's inputs are the outputs of the steps before it, so changing one step's
options re-runs that step and whatever consumes its outputs, nothing else.

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

from geossl import killpoint, progress
from geossl.io.atomic import write_text_atomic
from geossl.pipeline.base import Step
from geossl.pipeline.config import STEP_ORDER
from geossl.pipeline.context import RunContext
from geossl.pipeline.lock import run_lock
from geossl.pipeline.outputs import EvaluateOutput, Results, StepOutput
from geossl.pipeline.state import RunState, fingerprint, make_record, recorded

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
    done = Results()
    with run_lock(ctx.run_dir), ctx:
        _remove_leftovers(ctx.run_dir)
        state = RunState.load(ctx.run_dir)
        try:
            steps = ctx.config.steps.configured()
            for index, step in enumerate(steps):
                with killpoint.in_step(step.name), progress.stage(index, len(steps), step.name):
                    _run_step(ctx, state, step, done, step.name in force)
            progress.report(1.0, "done")
            summary["status"] = "ok"
        except BaseException:
            summary["status"] = "failed"
            raise
        finally:
            summary["steps"] = done.statuses
            summary["seconds"] = round(time.perf_counter() - started, 2)
            summary["outputs"] = {name: sorted(fingerprint(ctx.run_dir, output.files()))
                                  for name, output in done.outputs.items()}
            evaluation = done.find(EvaluateOutput)
            summary["metrics"] = dict(evaluation.scores) if evaluation is not None else {}
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


def _run_step(ctx: RunContext, state: RunState, step: Step, done: Results, force: bool) -> None:
    """Run ``step`` unless it is up to date; record it; add its output to ``done``."""
    name, digest = step.name, step.digest(ctx, done)
    record = state.step(name)
    kept = None if force else recorded(record.record, digest, ctx.run_dir, step.output)
    if kept is not None:
        log.info("%s: up to date, skipped", name)
        done.add(name, kept, {"status": "skipped", "seconds": 0.0})
        return
    log.info("%s: running", name)
    started = time.perf_counter()
    if step.scene_output is not None:
        scenes = _run_scenes(ctx, state, step, step.scene_output, done, digest, force)
        output = step.collect(scenes)
    else:
        output = step.run(ctx, done)
        killpoint.reached(killpoint.WRITTEN)
    record.record = make_record(digest, ctx.run_dir, output, time.perf_counter() - started)
    state.save(ctx.run_dir)
    seconds = round(time.perf_counter() - started, 2)
    done.add(name, output, {"status": "done", "seconds": seconds})
    log.info("%s: done in %.1f s", name, seconds)


def _run_scenes(ctx: RunContext, state: RunState, step: Step, kind: type[StepOutput], done: Results, digest: str,
                force: bool) -> dict[str, StepOutput]:
    """Run the step's scenes that are not done, recording each as it finishes; return every scene's output.

    Scenes run one after another; within a scene the work (prediction blocks, vectorization tiles) fans out
    over the run's Dask cluster. A run killed mid-step redoes only the scenes it had not finished.
    ``kind`` is the type of a scene's output (``step.scene_output``).
    """
    name, record = step.name, state.step(step.name)
    outputs: dict[str, StepOutput] = {}
    for scene in step.scenes(ctx, done):
        scene_digest = f"{digest}:{scene}"
        kept = None if force else recorded(record.scenes.get(scene), scene_digest, ctx.run_dir, kind)
        if kept is not None:
            log.info("%s: scene %s up to date", name, scene)
            outputs[scene] = kept
            continue
        started = time.perf_counter()
        outputs[scene] = step.run_scene(ctx, done, scene)
        killpoint.reached(killpoint.WRITTEN)
        record.scenes[scene] = make_record(scene_digest, ctx.run_dir, outputs[scene], time.perf_counter() - started)
        state.save(ctx.run_dir)
        log.info("%s: scene %s done", name, scene)
    return outputs
