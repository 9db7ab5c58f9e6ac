"""Outputs that appear whole or not at all: write to a temporary name, then rename."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from geossl.errors import InputError


def temp_name(final: Path) -> Path:
    """A hidden temporary name beside ``final`` (same folder, so the rename is atomic)."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


@contextmanager
def atomic_file(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it to ``final``, on error delete it."""
    final = Path(final)
    tmp = temp_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
        aux = tmp.with_name(tmp.name + ".aux.xml")
        if aux.exists():
            aux.unlink()


def write_text_atomic(final: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_file(final) as tmp:
        tmp.write_text(text)


@contextmanager
def staging_dir(out: str | Path, named: str | Path | None = None) -> Iterator[Path]:
    """Yield a fresh hidden folder beside ``out`` in which to build outputs; it is removed on exit.

    The caller moves finished files into ``out`` (see :func:`publish`) only when everything succeeded, so a
    failure leaves ``out`` as it was. A folder that cannot be created there (read-only, a file in the way) is
    bad input: an :class:`InputError` naming ``named`` (default ``out``).
    """
    out = Path(out).absolute()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    except OSError as exc:
        raise InputError(named or out, f"output folder is not writable ({exc.strerror or exc})") from exc
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)  # mkdtemp makes it private; the published folder should not be
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def publish(stage: Path, out: Path, files: list[str], last: str | None = None) -> None:
    """Move ``files`` (paths relative to ``stage``) into ``out``, each by an atomic rename; ``last`` goes last.

    If ``out`` does not exist yet the whole staging folder is renamed into place at once.
    """
    out = Path(out).absolute()
    if not out.exists():
        os.replace(stage, out)
        stage.mkdir()  # so the staging context manager has something to remove
        return
    ordered = [f for f in files if f != last] + ([last] if last else [])
    for rel in ordered:
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / rel, dst)
