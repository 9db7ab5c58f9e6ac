"""What the steps of one run share: the config, the run directory's layout and the run's one Dask client.

Results are not kept here: each step returns its output and receives the earlier steps' outputs explicitly
(:class:`geossl.pipeline.outputs.Results`).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

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
        self._stack = ExitStack()
        self._client: Client | None = None

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stack.close()
        self._client = None

    def client(self) -> Client:
        """The run's Dask client: started on first use, shared by every step and scene of the run, closed with it.

        It connects to the pipeline's ``scheduler``, else starts one LocalCluster (``workers`` threads, default
        one per core).
        """
        if self._client is None:
            from geossl.parallel import dask_client

            self._client = self._stack.enter_context(dask_client(self.config.scheduler, self.config.workers))
        return self._client

    def folder(self, name: str) -> Path:
        """``RUN_DIR/name``."""
        return self.run_dir / name
