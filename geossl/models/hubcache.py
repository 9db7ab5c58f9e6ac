"""Weights files in the caches torch.hub and huggingface_hub keep: found there, else downloaded once.

torchgeo's weights are URLs that torch.hub keeps as ``torch.hub.get_dir()/checkpoints/<file name of the URL>``
(``$TORCH_HOME/hub/checkpoints``, ``~/.cache/torch/hub/checkpoints`` by default); timm's are Hugging Face hub
repositories kept as ``<hub cache>/models--timm--<name>/snapshots/<revision>/<file>`` (the hub cache is
``$HF_HUB_CACHE``, else ``$HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, ``~/.cache/huggingface/hub`` by
default), or URLs kept like torch.hub's. A file missing from its cache is downloaded once, with a short network
timeout (nothing is downloaded when ``HF_HUB_OFFLINE`` is set; every torchgeo weight lives on that hub); when that
fails, an :class:`InputError` names the file and the folder where it is expected, so it can be put there by hand.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from geossl.errors import InputError
from geossl.io.atomic import atomic_file

#: Seconds to wait for a weights host before giving up on a download.
NETWORK_TIMEOUT_S = 5.0


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids downloads (huggingface_hub's switch)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, by huggingface_hub's rule, read now (huggingface_hub reads it on import)."""
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    chosen = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(chosen)))


def _missing(what: str, files: str, folder: str, why: str) -> InputError:
    return InputError(f"--weights {what}", f"not in the cache: expected {files} in {folder} ({why}; put the file "
                                           "there, or run once where the weights host can be reached)")


@dataclass(frozen=True)
class UrlFile:
    """A weights file at a URL, cached by torch.hub."""

    url: str

    def fetch(self, what: str) -> Path:
        """The cached file (downloaded into torch.hub's cache when missing); ``what`` names the weights."""
        import torch.hub

        folder = Path(torch.hub.get_dir()) / "checkpoints"
        path = folder / os.path.basename(urlparse(self.url).path)
        if path.is_file():
            return path
        if offline():
            raise _missing(what, path.name, str(folder), "HF_HUB_OFFLINE is set")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(self.url, timeout=NETWORK_TIMEOUT_S) as response, atomic_file(path) as tmp, \
                    tmp.open("wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
        except (OSError, ValueError) as exc:
            raise _missing(what, path.name, str(folder), f"downloading {self.url} failed: {exc}") from exc
        return path


@dataclass(frozen=True)
class HubFile:
    """A weights file in a Hugging Face hub repository: the first of ``filenames`` it holds."""

    repo: str
    filenames: tuple[str, ...]
    revision: str | None = None

    def fetch(self, what: str) -> Path:
        """The cached file (downloaded into the hub cache when missing); ``what`` names the weights."""
        from huggingface_hub import try_to_load_from_cache

        cache = hf_hub_cache()
        for name in self.filenames:
            found = try_to_load_from_cache(self.repo, name, cache_dir=cache, revision=self.revision)
            if isinstance(found, str):
                return Path(found)
        folder = cache / f"models--{self.repo.replace('/', '--')}" / "snapshots" / (self.revision or "<revision>")
        files = " or ".join(self.filenames)
        if offline():
            raise _missing(what, files, str(folder), "HF_HUB_OFFLINE is set")
        return self._download(what, cache, files, str(folder))

    def _download(self, what: str, cache: Path, files: str, folder: str) -> Path:
        """Download the first of ``filenames`` the repository holds (after one quick look at the host)."""
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:  # huggingface_hub retries an unreachable host for half a minute: look once first
            urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"),
                                   timeout=NETWORK_TIMEOUT_S).close()
        except urllib.error.HTTPError:
            pass  # the host answers
        except (OSError, ValueError) as exc:
            raise _missing(what, files, folder, f"{constants.ENDPOINT} cannot be reached: {exc}") from exc
        for name in self.filenames:
            try:
                return Path(hf_hub_download(self.repo, name, revision=self.revision, cache_dir=cache,
                                            etag_timeout=NETWORK_TIMEOUT_S))
            except EntryNotFoundError:
                continue
            except Exception as exc:  # noqa: BLE001 - any failure to download is reported the same way
                raise _missing(what, files, folder, f"downloading from {self.repo} failed: {exc}") from exc
        raise _missing(what, files, folder, f"{self.repo} holds none of them")
