"""Output rasters: per-block pieces written as rows finish, then one Cloud-Optimized GeoTIFF per output.

Each block writes its columns of every output into its own tiled GeoTIFF piece (no two tasks share a file).
When all blocks of a scene are done, a VRT mosaics the pieces, :func:`geossl.io.cog.wrap_vrt` adds what the
output must carry (band names, nodata, palette, class names, scale) and GDAL's COG driver writes the final
file with overviews, streamed block by block.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import rasterio
from rasterio import Affine
from rasterio.windows import Window

from geossl.io.cog import CogOptions, Compression, Grid, class_metadata, wrap_vrt, write_cog
from geossl.io.style import colormap
from geossl.manifest import ClassDef
from geossl.predict import encode

_GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16"}
PIECE_BLOCK = 256


@dataclass(frozen=True)
class OutputKind:
    """One output raster of a scene: ``<scene>_<name>.tif``."""

    name: str
    dtype: str
    count: int
    nodata: int
    descriptions: tuple[str, ...]
    overview_resampling: str
    scale: float | None = None
    palette: bool = False


def output_kinds(classes: Sequence[ClassDef], coding: encode.ClassCoding, probabilities: bool
                 ) -> tuple[OutputKind, ...]:
    """The outputs of a prediction: class raster, confidence, and optionally per-class probabilities."""
    kinds = [
        OutputKind("classes", coding.dtype, 1, coding.nodata, ("class",), "MODE", palette=True),
        OutputKind("confidence", "uint8", 1, encode.CONFIDENCE_NODATA, ("confidence",), "AVERAGE",
                   scale=1 / encode.CONFIDENCE_SCALE),
    ]
    if probabilities:
        kinds.append(OutputKind("probabilities", "uint8", len(classes), encode.PROBABILITY_NODATA,
                                tuple(c.name for c in classes), "AVERAGE", scale=1 / encode.PROBABILITY_SCALE))
    return tuple(kinds)


class BlockPieces:
    """The pieces one block writes: a tiled, compressed GeoTIFF per output over columns ``[col0, col1)``."""

    def __init__(self, kinds: Sequence[OutputKind], paths: Sequence[Path], grid: Grid, col0: int, col1: int) -> None:
        self.kinds, self.paths = list(kinds), list(paths)
        self.width, self.height = col1 - col0, grid.height
        self.crs, self.transform = grid.crs, grid.transform @ Affine.translation(col0, 0)
        self._files: dict[str, rasterio.io.DatasetWriter] = {}

    def __enter__(self) -> BlockPieces:
        for kind, path in zip(self.kinds, self.paths, strict=True):
            self._files[kind.name] = rasterio.open(
                path, "w", driver="GTiff", width=self.width, height=self.height, count=kind.count,
                crs=self.crs, transform=self.transform,
                dtype=kind.dtype, nodata=kind.nodata, tiled=True, blockxsize=PIECE_BLOCK, blockysize=PIECE_BLOCK,
                compress="ZSTD", zstd_level=1, interleave="band" if kind.count > 1 else "pixel",
                BIGTIFF="IF_SAFER")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def write(self, name: str, data: np.ndarray, row0: int) -> None:
        """Write ``data`` ``(count, h, width)`` at row ``row0`` of output ``name``."""
        self._files[name].write(data, window=Window(0, row0, data.shape[2], data.shape[1]))


def mosaic_vrt(pieces: Sequence[tuple[Path, int]], grid: Grid, kind: OutputKind) -> str:
    """A VRT (XML) placing each piece ``(path, col0)`` at its columns of the scene's grid."""
    geo = ", ".join(repr(v) for v in grid.transform.to_gdal())
    dtype = _GDAL_TYPES[kind.dtype]
    out = [f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">',
           f"<SRS>{html.escape(grid.crs.to_wkt())}</SRS><GeoTransform>{geo}</GeoTransform>"]
    for b in range(1, kind.count + 1):
        out.append(f'<VRTRasterBand dataType="{dtype}" band="{b}"><NoDataValue>{kind.nodata}</NoDataValue>')
        for path, col0 in pieces:
            with rasterio.open(path) as src:
                w, h = src.width, src.height
            out.append(
                f'<SimpleSource><SourceFilename relativeToVRT="0">{html.escape(str(path))}</SourceFilename>'
                f"<SourceBand>{b}</SourceBand>"
                f'<SourceProperties RasterXSize="{w}" RasterYSize="{h}" DataType="{dtype}" '
                f'BlockXSize="{PIECE_BLOCK}" BlockYSize="{PIECE_BLOCK}"/>'
                f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                f'<DstRect xOff="{col0}" yOff="0" xSize="{w}" ySize="{h}"/></SimpleSource>')
        out.append("</VRTRasterBand>")
    out.append("</VRTDataset>")
    return "".join(out)


def write_output(kind: OutputKind, pieces: Sequence[tuple[Path, int]], grid: Grid, dst: Path,
                 classes: Sequence[ClassDef], compress: Compression, cache_bytes: int) -> None:
    """Mosaic a scene's pieces of one output into the COG ``dst`` (with palette and class names for classes)."""
    vrt = dst.with_name(f".{dst.stem}.mosaic.vrt")
    vrt.write_text(mosaic_vrt(pieces, grid, kind))
    try:
        band_metadata = class_metadata([c.model_dump() for c in classes]) if kind.palette else None
        source = wrap_vrt(vrt, descriptions=list(kind.descriptions), nodata=kind.nodata,
                          colormap=colormap(classes, kind.nodata) if kind.palette else None,
                          band_metadata=band_metadata, scale=kind.scale)
        options = CogOptions(compress=compress, overview_resampling=kind.overview_resampling)
        write_cog(source, dst, options, cache_bytes=cache_bytes)
    finally:
        vrt.unlink(missing_ok=True)
