"""What the steps of one run share: the config, the run directory's layout, the Dask client, results."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the config imports the training and prediction options (torch): keep the CLI light
    from distributed import Client

    from geossl.pipeline.config import PipelineConfig


class RunContext:
    """The run directory layout and the resources of one run.

    ``RUN_DIR/`` holds ``data/`` (the demo's synthetic scene), ``ingest/``, ``train/``, ``suggest/``, ``predict/``,
    ``vectors/``, ``evaluate/``, ``report/``, ``logs/``, ``state.json``, ``summary.json`` and ``.lock``.
    """

    def __init__(self, config: PipelineConfig, quiet: bool = False) -> None:
        assert config.run_dir is not None
        self.config = config
        self.run_dir = config.run_dir
        self.quiet = quiet
        self.outputs: dict[str, list[str]] = {}
        self.metrics: dict[str, Any] = {}
        self.step_results: dict[str, dict[str, Any]] = {}
        self.checkpoint: Path | None = None
        self._stack = ExitStack()
        self._client: Client | None = None

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stack.close()

    def client(self) -> Client:
        """The run's Dask client, started on first use (``scheduler`` of the pipeline, else a LocalCluster)."""
        if self._client is None:
            from geossl.parallel import dask_client

            self._client = self._stack.enter_context(dask_client(self.config.scheduler, self.config.workers))
        return self._client

    def folder(self, name: str) -> Path:
        """``RUN_DIR/name``."""
        return self.run_dir / name

    @property
    def data_root(self) -> Path | None:
        """Where the manifest's paths resolve: the generated data for the demo, else the pipeline's."""
        if self.config.steps.synth is not None:
            return self.folder("data")
        return self.config.data_root
