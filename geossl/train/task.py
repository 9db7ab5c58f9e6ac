"""The Lightning task: torchgeo's :class:`~torchgeo.trainers.BaseTask` template filled in for geossl.

``configure_models`` builds the :class:`~geossl.models.Segmenter` and the strategy, ``configure_metrics`` the
confusion matrices and pseudo-label statistics; a training step hands the labeled and unlabeled batches to the
strategy. The unlabeled batch's hidden truth (when the unlabeled area has labels) is taken out of the batch
before the strategy sees it and only feeds :class:`~geossl.train.metrics.PseudoLabelStats`; its prior map (the
``prior`` option) goes to the strategy, whose pseudo-labelling base merges it (:mod:`geossl.ssl.prior`).

Randomness: step ``s`` of rank ``r`` hands the strategy a generator made from ``(seed, s, r)`` alone
(:func:`geossl.data.rng.draws`) for its strong views, CutMix and feature dropout, and reseeds torch's global
generator from them too, for randomness inside the network (the dropout of DeepLabV3+'s ASPP); the data's
windows are drawn the same way (:mod:`geossl.data.module`). With the weights, the optimizer and ``ssl_state``
restored, a resumed run computes exactly the steps the uninterrupted run computed.

Checkpoints carry the model bundle (``geossl``: classes, bands, normalisation, patch size, model config,
strategy, validation metrics) next to Lightning's ``state_dict`` (the segmenter's weights under ``model.``, the
strategy's own modules, such as DWL's pseudo head or an EMA teacher, under ``strategy.``), so
:func:`geossl.models.load_bundle` reads them with ``weights_only=True``; ``ssl_state`` holds the rest of the
strategy's state (DWL's class memory) for ``--resume``. The optimizer trains the segmenter and the strategy's
modules that need gradients; after each optimizer step the strategy may update its own (an EMA teacher).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import Tensor
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR
from torchgeo.trainers import BaseTask

from geossl.data.rng import draws, seed_of
from geossl.models import ModelBundle, Segmenter, load_bundle
from geossl.models.bundle import CHECKPOINT_MODEL, CHECKPOINT_STRATEGY, OLD_PSEUDO_HEAD
from geossl.ssl import STRATEGIES
from geossl.train.config import TrainConfig
from geossl.train.metrics import ConfusionMatrix, PseudoLabelStats, segmentation_metrics

log = logging.getLogger(__name__)


class SegmentationTask(BaseTask):
    """Semi-supervised semantic segmentation with one of :data:`geossl.ssl.STRATEGIES`."""

    monitor = "val_miou"
    mode = "max"

    def __init__(self, config: dict[str, Any], bundle: dict[str, Any], class_weights: list[float] | None = None
                 ) -> None:
        """Build from plain dumps of a :class:`TrainConfig` and a :class:`ModelBundle`.

        Plain types keep Lightning's saved hyperparameters loadable with ``weights_only``.
        """
        super().__init__()

    # ------------------------------------------------------------------ template methods of BaseTask
    def configure_models(self) -> None:
        """The segmentation network and the strategy that trains it (its own modules under ``strategy``)."""
        self.train_config = TrainConfig.model_validate(self.hparams["config"])
        self.bundle = ModelBundle.model_validate(self.hparams["bundle"])
        # the bundle records weights "none" (it is self-contained); the run starts from the config's weights
        start = self.bundle.model.model_copy(update={"weights": self.train_config.weights})
        self.model = Segmenter(start, self.bundle.bands)
        if self.train_config.init_from is not None:  # before the strategy copies it (an EMA teacher)
            self.model.load_state_dict(load_bundle(self.train_config.init_from)[1].state_dict())
            log.info("starting from the weights of %s", self.train_config.init_from)
        options = self.train_config.strategy
        weights = self.hparams.get("class_weights")
        views = self.train_config.views.resolved(self.bundle.bands)
        self.ssl = STRATEGIES[options.name](self.model, options, views,
                                            None if weights is None else torch.tensor(weights),
                                            self.train_config.debias_pseudo_labels, self.train_config.prior)
        self.strategy = self.ssl.owned  # registered here: checkpointed under CHECKPOINT_STRATEGY, never exported
        #: Epochs whose end the strategy has been told of (:meth:`on_train_epoch_start`).
        self.epochs_ended = 0

    def configure_metrics(self) -> None:
        """Confusion matrices (validation, test) and pseudo-label statistics."""
        k = self.bundle.model.num_classes
        self.val_cm = ConfusionMatrix(k)
        self.test_cm = ConfusionMatrix(k)
        self.pseudo_stats = PseudoLabelStats(k)
        self.val_metrics: dict[str, Any] = {}

    def configure_optimizers(self) -> Any:
        """AdamW with a polynomial decay ``(1 − t/T)^power`` per step."""
        cfg = self.train_config
        optimizer = AdamW(self.ssl.trainable(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = cfg.total_steps
        scheduler = LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total) ** cfg.poly_power)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ steps
    @property
    def class_names(self) -> list[str]:
        """Class names in channel order."""
        return [c.name for c in self.bundle.classes]

    def training_step(self, batch: dict[str, dict[str, Tensor]], batch_idx: int) -> Tensor:
        """One strategy step; the hidden truth never reaches the strategy."""
        batch_l = batch["labeled"]
        batch_u = batch.get("unlabeled")
        truth = None
        if batch_u is not None:
            batch_u = dict(batch_u)
            truth = batch_u.pop("truth", None)
        step = self.global_step
        out = self.ssl.step(batch_l, batch_u, step, self.train_config.total_steps, self.step_draws(step))
        n = batch_l["image"].shape[0]
        self.log("train_loss", out.loss.detach(), prog_bar=True, batch_size=n)
        for name, value in out.terms.items():
            self.log(f"train_{name}", value, batch_size=n)
        if out.pseudo is not None:
            self.pseudo_stats.update(out.pseudo.labels, out.pseudo.weight, out.pseudo.valid, truth)
        return out.loss

    def step_draws(self, step: int) -> torch.Generator:
        """The generator of one step's random choices; also reseeds torch's global generator for the network's."""
        seed, rank = self.train_config.seed, self.global_rank
        torch.manual_seed(seed_of(seed, "network", rank, step))
        return draws(seed, "step", rank, step)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Lightning's optimizer step, then the strategy's (before any callback sees the step's end)."""
        super().optimizer_step(*args, **kwargs)
        self.ssl.after_optimizer_step()

    def on_train_epoch_start(self) -> None:
        """The strategy's end of the epoch before (DWL's head merge), after that epoch's validation and checkpoints.

        As RS-DWL: the validated and saved model of an epoch is the one it trained, never one with a freshly
        merged head. ``epochs_ended`` (checkpointed) keeps a run resumed mid-epoch from merging twice.
        """
        if self.current_epoch > self.epochs_ended:
            self.ssl.on_train_epoch_end()
            self.epochs_ended = self.current_epoch

    def on_train_epoch_end(self) -> None:
        """Log the epoch's pseudo-label diagnostics."""
        if not self.train_config.strategy.data_spec().unlabeled:
            return
        stats = self.pseudo_stats.compute()
        self.pseudo_stats.reset()
        self.log("pseudo_used_share", stats["used_share"], sync_dist=False)
        self.log("pseudo_mean_weight", stats["mean_weight"], sync_dist=False)
        if not math.isnan(stats["accuracy"]):
            self.log("pseudo_accuracy", stats["accuracy"], sync_dist=False)
        for name, count in zip(self.class_names, stats["counts"], strict=True):
            self.log(f"pseudo_count/{name}", float(count), sync_dist=False)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Accumulate the confusion matrix of a grid batch."""
        self.val_cm.update(self.model(batch["image"]).argmax(dim=1), batch["mask"])

    def on_validation_epoch_end(self) -> None:
        """Log macro mIoU, per-class IoU, overall accuracy and kappa of the validation split."""
        self.val_metrics = self._log_metrics("val", self.val_cm)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Accumulate the confusion matrix of a grid batch."""
        self.test_cm.update(self.model(batch["image"]).argmax(dim=1), batch["mask"])

    def on_test_epoch_end(self) -> None:
        """Log the test split's metrics."""
        self._log_metrics("test", self.test_cm)

    def _log_metrics(self, prefix: str, cm: ConfusionMatrix) -> dict[str, Any]:
        metrics = segmentation_metrics(cm.compute(), self.class_names)
        cm.reset()
        nan = float("nan")
        self.log(f"{prefix}_miou", metrics["miou"], prog_bar=True)
        self.log(f"{prefix}_oa", metrics["oa"])
        self.log(f"{prefix}_kappa", metrics["kappa"])
        for name, iou in metrics["iou"].items():
            self.log(f"{prefix}_iou/{name}", nan if iou is None else iou)
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def current_bundle(self) -> ModelBundle:
        """The bundle with the latest validation metrics and the step they belong to."""
        metrics: dict[str, Any] = {"step": int(self.global_step)}
        if self.val_metrics:
            metrics["val"] = {k: v for k, v in self.val_metrics.items() if k != "confusion_matrix"}
        return self.bundle.model_copy(update={"metrics": metrics})

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add the bundle and the strategy state."""
        checkpoint["geossl"] = self.current_bundle().model_dump(mode="json")
        checkpoint["ssl_state"] = self.ssl.state_dict()
        checkpoint["epochs_ended"] = self.epochs_ended

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the strategy state; a checkpoint of DWL's pseudo head inside the model is moved to the strategy."""
        old = CHECKPOINT_MODEL + OLD_PSEUDO_HEAD
        state = checkpoint["state_dict"]
        for key in [k for k in state if k.startswith(old)]:
            state[CHECKPOINT_STRATEGY + key.removeprefix(CHECKPOINT_MODEL)] = state.pop(key)
        self.ssl.load_state_dict(checkpoint.get("ssl_state", {}))
        # checkpoints written before the record merged at their epoch's end, before saving
        self.epochs_ended = int(checkpoint.get("epochs_ended", checkpoint.get("epoch", -1) + 1))
