"""Class palettes and QGIS styles (QML) for class rasters."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Protocol


class ClassLike(Protocol):
    """Anything with a class id, name and ``#rrggbb`` colour."""

    id: int
    name: str
    color: str


def colormap(classes: Sequence[ClassLike], nodata: int | None = 0) -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour map of the classes; ``nodata`` (if given) is transparent."""
    cmap: dict[int, tuple[int, int, int, int]] = {}
    if nodata is not None:
        cmap[nodata] = (0, 0, 0, 0)
    for c in classes:
        cmap[c.id] = (int(c.color[1:3], 16), int(c.color[3:5], 16), int(c.color[5:7], 16), 255)
    return cmap


def raster_qml(classes: Sequence[ClassLike], band: int = 1, opacity: float = 1.0) -> str:
    """A QGIS style for a class raster: paletted renderer with every class's colour and label.

    QGIS replaces a raster's embedded palette with the style's renderer, so the style must carry the whole
    palette (a style with only opacity shows the raster black).
    """
    entries = "\n".join(
        f'        <paletteEntry value="{c.id}" color="{c.color}" alpha="255" label="{html.escape(c.name)}"/>'
        for c in classes
    )
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.28.0" styleCategories="AllStyleCategories">
  <pipe>
    <rasterrenderer type="paletted" band="{band}" opacity="{opacity}" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <colorPalette>
{entries}
      </colorPalette>
      <colorramp type="randomcolors" name="[source]"/>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" invertColors="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""
