"""Cloud-Optimized GeoTIFF writing through GDAL's COG driver.

A source file is wrapped in a small VRT that sets what the analysis-ready copy must carry (band descriptions,
nodata, palette, metadata), and GDAL's COG driver writes it, warping onto a target grid when one is given.
GDAL streams the copy block by block, compresses on every core and builds overviews, so memory stays bounded
by ``GDAL_CACHEMAX`` whatever the scene size.

Empty pixels of imagery without a nodata value. A warp leaves pixels outside the scene; when the imagery declares
no nodata, every value is a possible pixel (a saturated 255 of 8-bit imagery is a white roof, not a hole), so
no value can mark them. They are marked by a mask instead (:func:`write_cog` with ``mask_empty``): the warp's
alpha becomes the COG's *internal per-dataset mask* (a 1-bit deflated TIFF mask beside the bands, with
overviews of its own), not an alpha band, because

- the bands stay the imagery's bands: an alpha band would be one more band for the band statistics, the model's
  inputs and every band-count check to skip;
- GDAL takes an alpha band as the mask only in 2- and 4-band rasters (a 7-band scene's alpha would be data),
  while a per-dataset mask is the mask (``GetMaskBand``, ``rasterio``'s ``dataset_mask``) whatever the bands;
- the COG driver copies a source's per-dataset mask into the COG and builds its overviews; GDAL's warper,
  ``gdalwarp`` and ``WarpedVRT`` read it as the source's validity; QGIS (since 3.0) shows it as transparency.
"""

from __future__ import annotations

import html
import json
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import rasterio
import rasterio.shutil
from pydantic import BeforeValidator, Field
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from geossl.io.atomic import atomic_file

#: GDAL block cache for one COG write (bytes); the write's peak memory is about this plus the codec buffers.
CACHE_BYTES = 64 * 1024 * 1024

_GDAL_TYPES = {
    "uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
    "int32": "Int32", "float32": "Float32", "float64": "Float64", "uint64": "UInt64", "int64": "Int64",
}


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, north-up transform and size."""

    crs: CRS
    transform: rasterio.Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of the grid."""
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size (x, y), both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @classmethod
    def of(cls, dataset: Any) -> Grid:
        """The grid of an open rasterio dataset."""
        return cls(dataset.crs, dataset.transform, dataset.width, dataset.height)

    def same_as(self, other: Grid, tol: float = 1e-6) -> bool:
        """True when both grids are the same pixels (CRS equal, transform equal within ``tol`` pixels)."""
        if self.width != other.width or self.height != other.height or self.crs != other.crs:
            return False
        return bool(self.transform.almost_equals(other.transform, precision=tol * self.resolution[0]))


def wrap_vrt(path: str | Path, *, descriptions: list[str] | None = None, nodata: float | None = None,
             colormap: dict[int, tuple[int, int, int, int]] | None = None,
             band_metadata: dict[str, str] | None = None, metadata: dict[str, str] | None = None,
             scale: float | None = None, mask_last: bool = False) -> str:
    """A VRT (XML string) exposing ``path`` unchanged but with the given descriptions, nodata and palette.

    GDAL copies these, and the metadata, into the output when the VRT is the source of a COG write.
    ``scale`` sets every band's GDAL scale (value = pixel x scale), e.g. ``1/255`` for probabilities stored as bytes.
    With ``mask_last`` the last band of ``path`` (a warp's alpha) becomes the VRT's per-dataset mask instead of a
    band: a COG written from the VRT stores it as its internal mask.
    """
    with rasterio.open(path) as src:
        width, height, count = src.width, src.height, src.count
        dtypes, crs, transform = src.dtypes, src.crs, src.transform
        block = src.block_shapes[0]
    src_name = html.escape(str(Path(path).absolute()))
    geo = ", ".join(repr(v) for v in transform.to_gdal())
    parts = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"<SRS>{html.escape(crs.to_wkt())}</SRS>" if crs else "",
             f"<GeoTransform>{geo}</GeoTransform>", _metadata_xml(metadata)]

    def source(b: int, dtype: str) -> str:
        return (f'<SimpleSource><SourceFilename relativeToVRT="0">{src_name}</SourceFilename>'
                f"<SourceBand>{b}</SourceBand>"
                f'<SourceProperties RasterXSize="{width}" RasterYSize="{height}" DataType="{dtype}" '
                f'BlockXSize="{block[1]}" BlockYSize="{block[0]}"/>'
                f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
                f'<DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/></SimpleSource>')

    bands = count - 1 if mask_last else count
    for b in range(1, bands + 1):
        dtype = _GDAL_TYPES[dtypes[b - 1]]
        parts.append(f'<VRTRasterBand dataType="{dtype}" band="{b}">')
        if descriptions:
            parts.append(f"<Description>{html.escape(descriptions[b - 1])}</Description>")
        if nodata is not None:
            parts.append(f"<NoDataValue>{nodata!r}</NoDataValue>")
        if scale is not None:
            parts.append(f"<Offset>0</Offset><Scale>{scale!r}</Scale>")
        if colormap is not None and b == 1:
            parts.append("<ColorInterp>Palette</ColorInterp><ColorTable>")
            for i in range(max(colormap) + 1):
                r, g, bl, a = colormap.get(i, (0, 0, 0, 0))
                parts.append(f'<Entry c1="{r}" c2="{g}" c3="{bl}" c4="{a}"/>')
            parts.append("</ColorTable>")
        parts.append(_metadata_xml(band_metadata))
        parts.append(source(b, dtype))
        parts.append("</VRTRasterBand>")
    if mask_last:
        parts.append(f'<MaskBand><VRTRasterBand dataType="Byte">{source(count, "Byte")}</VRTRasterBand></MaskBand>')
    parts.append("</VRTDataset>")
    return "".join(parts)


def _metadata_xml(items: dict[str, str] | None) -> str:
    if not items:
        return ""
    body = "".join(f'<MDI key="{html.escape(k)}">{html.escape(v)}</MDI>' for k, v in items.items())
    return f"<Metadata>{body}</Metadata>"


#: The codecs geossl writes COGs with.
Compression = Literal["ZSTD", "DEFLATE", "LZW", "NONE"]
#: An options field choosing the codec (``--compress``, any case).
CompressionOption = Annotated[Compression, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
                              Field(description="COG compression.")]


@dataclass(frozen=True)
class CogOptions:
    """How COGs are written: codec, tiles, overview resampling, threads."""

    compress: Compression = "ZSTD"
    level: int = 1
    blocksize: int = 256
    overview_resampling: str = "AVERAGE"
    warp_resampling: str = "bilinear"
    predictor: bool = True
    threads: str = "ALL_CPUS"

    def creation_options(self) -> dict[str, str]:
        """GDAL COG driver creation options."""
        opts = {
            "COMPRESS": self.compress, "BLOCKSIZE": str(self.blocksize), "BIGTIFF": "IF_SAFER",
            "OVERVIEW_RESAMPLING": self.overview_resampling, "NUM_THREADS": self.threads,
            "PREDICTOR": "YES" if self.predictor else "NO", "OVERVIEWS": "IGNORE_EXISTING",
        }
        if self.compress.upper() in ("ZSTD", "DEFLATE"):
            opts["LEVEL"] = str(self.level)
        return opts


def square_pixels(grid: Grid) -> bool:
    """True when the grid's pixels are square (the only kind the COG driver's own warp writes)."""
    rx, ry = grid.resolution
    return math.isclose(rx, ry, rel_tol=1e-9)


def warp_options(grid: Grid, resampling: str) -> dict[str, str]:
    """COG driver options that warp the source onto ``grid`` (square pixels: ``RES`` takes one value)."""
    minx, miny, maxx, maxy = grid.bounds
    return {
        "TARGET_SRS": grid.crs.to_wkt(), "RES": repr(grid.resolution[0]),
        "EXTENT": f"{minx!r},{miny!r},{maxx!r},{maxy!r}", "WARP_RESAMPLING": resampling,
    }


def write_cog(source: str, dst: str | Path, options: CogOptions, target: Grid | None = None,
              cache_bytes: int = CACHE_BYTES, mask_empty: bool = False) -> None:
    """Copy ``source`` (a path or VRT XML) to a COG at ``dst``, warped onto ``target`` when given.

    The COG driver warps onto grids of square pixels itself; other grids are read through a ``WarpedVRT``.
    With ``mask_empty`` the pixels the warp leaves empty are marked by the COG's internal mask (see the module's
    docstring) and every other pixel keeps its value: for sources without a nodata value.
    The file appears under ``dst`` only when complete (written under a temporary name, then renamed).
    ``cache_bytes`` is GDAL's block cache for the copy (the write's memory bound).
    """
    opts = options.creation_options()
    with rasterio.Env(GDAL_CACHEMAX=cache_bytes, GDAL_NUM_THREADS=options.threads), atomic_file(dst) as tmp:
        if target is None:
            rasterio.shutil.copy(source, tmp, driver="COG", **opts)
        elif mask_empty:
            with _masked_warp(source, target, options) as masked:
                rasterio.shutil.copy(masked, tmp, driver="COG", **opts)
        elif square_pixels(target):
            rasterio.shutil.copy(source, tmp, driver="COG", **opts, **warp_options(target, options.warp_resampling))
        else:
            with rasterio.open(source) as src, WarpedVRT(
                src, crs=target.crs, transform=target.transform, width=target.width, height=target.height,
                resampling=Resampling[options.warp_resampling],
            ) as vrt:
                rasterio.shutil.copy(vrt, tmp, driver="COG", **opts)


@contextmanager
def _masked_warp(source: str, target: Grid, options: CogOptions) -> Iterator[str]:
    """``source`` warped onto ``target`` as a VRT (XML) whose per-dataset mask is the warp's alpha (0 = empty).

    The warped VRT lives in GDAL's in-memory file system for the copy (a VRT's mask must name a file).
    """
    warped = f"/vsimem/geossl-warp-{uuid.uuid4().hex}.vrt"
    with rasterio.open(source) as src:
        descriptions = [d or "" for d in src.descriptions]
        with WarpedVRT(src, crs=target.crs, transform=target.transform, width=target.width, height=target.height,
                       resampling=Resampling[options.warp_resampling], add_alpha=True,
                       NUM_THREADS=options.threads) as vrt:
            rasterio.shutil.copy(vrt, warped, driver="VRT")
    try:
        yield wrap_vrt(warped, descriptions=descriptions if any(descriptions) else None, mask_last=True)
    finally:
        rasterio.shutil.delete(warped)


def class_metadata(classes: list[dict[str, Any]]) -> dict[str, str]:
    """Band metadata that names the classes of a class raster (read back by predict and vectorize)."""
    return {"classes": json.dumps(classes, separators=(",", ":"))}
