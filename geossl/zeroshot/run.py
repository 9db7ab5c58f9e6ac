"""``geossl zeroshot``: a prior map from SAM's automatic masks, each labelled with its nearest CLIP class prompt.

Each scene is rendered as RGB (three catalog bands, percentile stretch), cut into tiles; SAM proposes masks per
tile; CLIP embeds each masked crop and the class prompts; a mask takes the class of the nearest prompt. Masks are
painted largest first, so a smaller mask inside a larger one keeps its own class; pixels under no mask stay 0.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from tqdm import tqdm

from geossl.catalog import CATALOG_NAME, Catalog
from geossl.errors import InputError
from geossl.io.cog import CogOptions, Grid, class_metadata, wrap_vrt, write_cog
from geossl.io.style import colormap
from geossl.models.sam import load_sam
from geossl.train.inputs import ensure_catalog
from geossl.zeroshot.clip import Clip, load_clip
from geossl.zeroshot.grid import catalog_grid, offset_in, scene_grid
from geossl.zeroshot.label import class_embeddings, label_masks
from geossl.zeroshot.options import ZeroshotOptions
from geossl.zeroshot.prompts import class_prompts
from geossl.zeroshot.render import band_indexes, read_rgb
from geossl.zeroshot.sam import automatic_masks

log = logging.getLogger(__name__)

#: The class id of pixels no mask labelled.
NO_LABEL = 0


def zeroshot(manifest_path: Path, catalog_dir: Path, data_root: Path | None, options: ZeroshotOptions,
             quiet: bool = False) -> Path:
    """Write the zero-shot prior of the catalog's scenes to ``options.out``; return its path."""
    import torch

    manifest, catalog, root = ensure_catalog(manifest_path, catalog_dir, data_root, quiet)
    if NO_LABEL in manifest.class_ids:
        raise InputError(manifest_path, f"class id {NO_LABEL} is the prior's 'no label'; renumber the classes")
    indexes = band_indexes(catalog.bands, options.rgb_bands, root / CATALOG_NAME)
    prompts = class_prompts(manifest.classes, options.prompt_template, options.prompts_file)
    sam, clip = load_sam(options.sam), load_clip(options.clip)
    if options.threads:
        torch.set_num_threads(options.threads)
    texts = class_embeddings(clip, prompts)
    grid = catalog_grid(catalog)
    out = np.zeros((grid.height, grid.width), dtype=np.uint16)
    for scene in catalog.scenes:
        rgb, valid = read_rgb(catalog.path_of(root, scene.image), indexes, options.stretch_low, options.stretch_high)
        labels = _label_scene(sam, clip, texts, rgb, valid, manifest.class_ids, options, quiet)
        row, col = offset_in(grid, scene_grid(catalog, scene))
        window = out[row:row + scene.height, col:col + scene.width]
        window[labels != NO_LABEL] = labels[labels != NO_LABEL]
    _write(out, grid, catalog, options.out)
    log.info("zero-shot prior: %.1f %% of the pixels labelled, written to %s", 100 * (out > 0).mean(), options.out)
    return options.out


def _label_scene(sam: object, clip: Clip, texts: object, rgb: np.ndarray, valid: np.ndarray, ids: list[int],
                 options: ZeroshotOptions, quiet: bool) -> np.ndarray:
    """The class-id map of one scene, tile by tile (pixels outside ``valid`` stay 0)."""
    height, width = valid.shape
    labels = np.zeros((height, width), dtype=np.uint16)
    tiles = [(r, c) for r in range(0, height, options.tile) for c in range(0, width, options.tile)]
    for r, c in tqdm(tiles, desc="SAM + CLIP", disable=quiet, leave=False):
        tile_valid = valid[r:r + options.tile, c:c + options.tile]
        if not tile_valid.any():
            continue
        tile = rgb[r:r + options.tile, c:c + options.tile]
        masks = [m & tile_valid for m in automatic_masks(sam, tile, options.points_per_side,
                                                         options.pred_iou_thresh, options.stability_thresh)]
        masks = [m for m in masks if m.sum() >= options.min_area]
        if masks:
            labels[r:r + options.tile, c:c + options.tile] = label_masks(clip, texts, tile, masks, ids)
    return labels


def _write(labels: np.ndarray, grid: Grid, catalog: Catalog, dst: Path) -> None:
    """The class-id map as a paletted COG (nodata 0, the classes in its band metadata), written whole."""
    dst = dst.absolute()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dtype = "uint8" if labels.max(initial=0) < 256 else "uint16"
    with tempfile.TemporaryDirectory(prefix=f".{dst.name}.", dir=dst.parent) as scratch:
        plain = Path(scratch) / "prior.tif"
        with rasterio.open(plain, "w", driver="GTiff", width=grid.width, height=grid.height, count=1,
                           dtype=dtype, crs=grid.crs, transform=grid.transform, nodata=NO_LABEL, tiled=True,
                           compress="zstd") as out:
            out.write(labels.astype(dtype)[None])
        vrt = wrap_vrt(plain, descriptions=["class"], nodata=NO_LABEL,
                       colormap=colormap(catalog.classes, nodata=NO_LABEL),
                       band_metadata=class_metadata([c.model_dump() for c in catalog.classes]))
        write_cog(vrt, dst, CogOptions(overview_resampling="MODE", warp_resampling="nearest", predictor=False))
