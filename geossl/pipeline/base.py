"""The interface of a pipeline step: an options model that runs itself.

A step's fields are its options, the same model (fields, defaults, checks) as its command's flags; its methods
say what decides its outputs (:meth:`Step.options`, :meth:`Step.inputs`) and make them (:meth:`Step.run`, or
:meth:`Step.run_scene` per scene for scene-level steps), returning a typed :class:`StepOutput`. A step receives
the outputs of the steps before it as :class:`Results` and takes what it needs by type; it never looks for
another step's files by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import PrivateAttr

from geossl.config import StrictModel, stable_hash
from geossl.pipeline.outputs import Results, StepOutput

if TYPE_CHECKING:
    from geossl.pipeline.context import RunContext

#: A file an output depends on, as the digest sees it: (path, size, modification time in ns).
FileStamp = tuple[str, int, int]


class Step(StrictModel):
    """One step of a run: its options (the fields) and how to run it (template: digest → run → record).

    ``output`` is the type :meth:`run` returns. A scene-level step sets ``scene_output`` (the type
    :meth:`run_scene` returns) and ``output`` to the ``SceneOutputs`` of it
    (:class:`~geossl.pipeline.outputs.SceneOutputs`), and implements :meth:`scenes` and :meth:`run_scene`: the
    runner records each scene as it finishes, so a killed run redoes only the rest.
    """

    output: ClassVar[type[StepOutput]]
    scene_output: ClassVar[type[StepOutput] | None] = None
    _name: str = PrivateAttr("")

    @property
    def name(self) -> str:
        """The step's name: its field of the pipeline's ``steps`` (set when the pipeline's steps are read)."""
        return self._name

    def options(self, ctx: RunContext) -> Any:
        """Everything besides input files that decides the outputs (JSON-serialisable)."""
        return self.model_dump(mode="json")

    def inputs(self, ctx: RunContext, done: Results) -> list[Path]:
        """Files whose content the outputs depend on (mostly outputs of the steps before)."""
        return []

    def input_stamps(self, ctx: RunContext, done: Results) -> list[FileStamp]:
        """The input files' paths, sizes and modification times, in path order (what the digest hashes)."""
        return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(self.inputs(ctx, done))
                if p.is_file()]

    def digest(self, ctx: RunContext, done: Results) -> str:
        """Hash of the step's name, options and input files (the step is up to date while it is unchanged)."""
        return stable_hash(self.name, self.options(ctx), self.input_stamps(ctx, done))

    def run(self, ctx: RunContext, done: Results) -> StepOutput:
        """Make the outputs; return them."""
        raise NotImplementedError(f"{type(self).__name__} runs per scene")

    def scenes(self, ctx: RunContext, done: Results) -> list[str]:
        """Scene ids this step works on (scene-level steps)."""
        raise NotImplementedError(f"{type(self).__name__} is not a scene-level step")

    def run_scene(self, ctx: RunContext, done: Results, scene: str) -> StepOutput:
        """Make one scene's outputs; return them (scene-level steps)."""
        raise NotImplementedError(f"{type(self).__name__} is not a scene-level step")

    def collect(self, scenes: dict[str, StepOutput]) -> StepOutput:
        """The step's output (its ``SceneOutputs``) from its scenes' outputs (scene-level steps)."""
        return self.output.model_validate({"scenes": scenes})
