"""The CLIP text prompts of each class: a template, or the prompts a YAML file gives per class name."""

from __future__ import annotations

from pathlib import Path

from geossl.config import read_yaml
from geossl.errors import InputError
from geossl.manifest import ClassDef
from geossl.zeroshot.options import CLASS_PLACEHOLDER


def class_prompts(classes: list[ClassDef], template: str, prompts_file: Path | None) -> list[list[str]]:
    """One list of prompts per class (manifest order).

    ``prompts_file`` maps class names to a prompt or a list of prompts; classes it does not name use
    ``template`` with ``{class}`` replaced by the class name (lower case).
    """
    given: dict[str, list[str]] = {}
    if prompts_file is not None:
        raw = read_yaml(prompts_file)
        names = {c.name for c in classes}
        if not isinstance(raw, dict):
            raise InputError(prompts_file, "expected a mapping of class names to prompts")
        for name, value in raw.items():
            if name not in names:
                raise InputError(prompts_file, f"'{name}' is not a class (classes: {sorted(names)})")
            prompts = [value] if isinstance(value, str) else value
            if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) and p for p in prompts):
                raise InputError(prompts_file, f"'{name}': give a prompt or a non-empty list of prompts")
            given[name] = prompts
    return [given.get(c.name, [template.replace(CLASS_PLACEHOLDER, c.name.lower())]) for c in classes]
