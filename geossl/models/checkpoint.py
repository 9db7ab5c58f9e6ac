"""Reading a local weights file: a missing or unreadable one is a one-line error naming it."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from geossl.errors import InputError


def read_state_dict(path: Path, what: str) -> dict[str, Any]:
    """The tensors of a local state dict (``torch.save``), unwrapped from a ``state_dict`` key if present."""
    import torch

    if not path.is_file():
        raise InputError(path, f"{what} checkpoint not found (weights are read from local files only)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise InputError(path, f"cannot read the {what} checkpoint: {str(exc).splitlines()[0]}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise InputError(path, f"not a {what} checkpoint (no state dict of tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}
