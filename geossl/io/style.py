"""Class palettes and QGIS styles (QML): class rasters and polygons, ranked polygons, a layer to draw labels in."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Protocol

import numpy as np


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


def _rgb(color: str) -> str:
    return ",".join(str(int(color[i:i + 2], 16)) for i in (1, 3, 5))


def _darker(color: str, factor: float = 0.7) -> str:
    return ",".join(str(int(int(color[i:i + 2], 16) * factor)) for i in (1, 3, 5))


def vector_qml(classes: Sequence[ClassLike], field: str = "class_id") -> str:
    """A QGIS style for class polygons: categorized renderer on ``field``, one fill per class with its label.

    Symbol properties are written both as ``<Option>`` maps (QGIS ≥ 3.26) and ``<prop>`` pairs (older QGIS).
    """
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.28.0" styleCategories="Symbology">
{_categorized(classes, field, 255)}
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerOpacity>1</layerOpacity>
  <layerGeometryType>2</layerGeometryType>
</qgis>
"""


#: Fill opacity (0-255) of drawn labels: the imagery shows through while digitising.
LABEL_ALPHA = 150
#: How a drawn polygon without a class yet looks (the renderer's category for every other value).
UNSET_PROPS = {"color": "0,0,0,0", "outline_color": "255,0,0,255", "outline_style": "dash", "outline_width": "0.6",
               "outline_width_unit": "MM", "style": "no", "joinstyle": "miter", "offset": "0,0", "offset_unit": "MM"}


def label_qml(classes: Sequence[ClassLike], field: str) -> str:
    """A QGIS style and form for drawing labels: class fills on ``field``, and ``field`` as a drop-down of names.

    The attribute form shows ``field`` as a value map (the class names, in the manifest's order, stored as their
    ids) that may not stay empty (a hard not-null constraint: QGIS keeps the form open until a class is chosen).
    A polygon without a class shows as a dashed red outline.
    """
    name = html.escape(field, quote=True)
    entries = "\n".join(f'              <Option type="Map"><Option type="QString" '
                        f'name="{html.escape(c.name, quote=True)}" value="{c.id}"/></Option>' for c in classes)
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.28.0" styleCategories="AllStyleCategories">
{_categorized(classes, field, LABEL_ALPHA, UNSET_PROPS)}
  <fieldConfiguration>
    <field name="{name}" configurationFlags="None">
      <editWidget type="ValueMap">
        <config>
          <Option type="Map">
            <Option type="List" name="map">
{entries}
            </Option>
          </Option>
        </config>
      </editWidget>
    </field>
  </fieldConfiguration>
  <constraints>
    <constraint field="{name}" constraints="1" notnull_strength="1" unique_strength="0" exp_strength="0"/>
  </constraints>
  <editorlayout>generatedlayout</editorlayout>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerOpacity>1</layerOpacity>
  <layerGeometryType>2</layerGeometryType>
</qgis>
"""


def _categorized(classes: Sequence[ClassLike], field: str, alpha: int, other: dict[str, str] | None = None) -> str:
    """A categorized renderer on ``field``: a fill per class (``alpha`` opaque), and ``other`` for other values."""
    categories, symbols = [], []
    for i, c in enumerate(classes):
        label = html.escape(c.name, quote=True)
        categories.append(f'      <category value="{c.id}" symbol="{i}" label="{label}" render="true"/>')
        props = {"color": f"{_rgb(c.color)},{alpha}", "outline_color": f"{_darker(c.color)},255",
                 "outline_style": "solid", "outline_width": "0.1" if alpha == 255 else "0.4",
                 "outline_width_unit": "MM", "style": "solid", "joinstyle": "bevel", "offset": "0,0",
                 "offset_unit": "MM"}
        symbols.append(_fill_symbol(i, props))
    if other is not None:
        categories.append(f'      <category value="" symbol="{len(classes)}" label="no class" render="true"/>')
        symbols.append(_fill_symbol(len(classes), other))
    cats, syms = "\n".join(categories), "\n".join(symbols)
    attr = html.escape(field, quote=True)
    return f"""  <renderer-v2 type="categorizedSymbol" attr="{attr}" symbollevels="0" enableorderby="0"
               forceraster="0" referencescale="-1">
    <categories>
{cats}
    </categories>
    <symbols>
{syms}
    </symbols>
    <rotation/>
    <sizescale/>
  </renderer-v2>"""


#: Colour stops of the rank classes, most urgent first (ColorBrewer YlOrRd, reversed).
RANK_COLORS = ("#bd0026", "#e31a1c", "#fc4e2a", "#fd8d3c", "#feb24c", "#fed976")
#: Rank classes at most (ranks 1..n fall into min(n, this) equal ranges).
RANK_CLASSES = 10


def _ramp(t: float) -> str:
    """The colour at ``t`` in [0, 1] along :data:`RANK_COLORS` (linear between stops)."""
    x = t * (len(RANK_COLORS) - 1)
    i = min(int(x), len(RANK_COLORS) - 2)
    a, b = (np.array([int(c[j : j + 2], 16) for j in (1, 3, 5)]) for c in RANK_COLORS[i : i + 2])
    return "#" + "".join(f"{int(round(v)):02x}" for v in a + (b - a) * (x - i))


def rank_classes(n: int, classes: int = RANK_CLASSES) -> list[tuple[float, float, str]]:
    """``(lower, upper, colour)`` of the rank ranges of :func:`rank_qml`, first ranks first.

    Ranks ``1..n`` fall into ``min(n, classes)`` equal ranges between half-integers (so no rank sits on a
    boundary), coloured from dark red (first) to yellow.
    """
    k = max(1, min(classes, n))
    edges = [0.5 + round(i * n / k) for i in range(k + 1)]
    return [(edges[i], edges[i + 1], _ramp(i / max(1, k - 1))) for i in range(k)]


def rank_color(rank: int, n: int) -> str:
    """The colour :func:`rank_qml` gives ``rank`` of ``n``."""
    return next(color for lo, hi, color in rank_classes(n) if lo < rank < hi)


def rank_qml(n: int, field: str = "rank") -> str:
    """A QGIS style for ranked polygons (1 = first): graduated by ``field`` (:func:`rank_classes`), labelled with it.

    The fill is light so that the imagery under a window stays visible, the outline strong.
    """
    ranges, symbols = [], []
    for i, (lo, hi, color) in enumerate(rank_classes(n)):
        first, last = int(lo + 0.5), int(hi - 0.5)
        label = f"{first}" if first == last else f"{first} - {last}"
        ranges.append(f'      <range lower="{lo}" upper="{hi}" symbol="{i}" label="{label}" render="true"/>')
        props = {"color": f"{_rgb(color)},60", "outline_color": f"{_rgb(color)},255", "outline_style": "solid",
                 "outline_width": "0.6", "outline_width_unit": "MM", "style": "solid", "joinstyle": "miter",
                 "offset": "0,0", "offset_unit": "MM"}
        symbols.append(_fill_symbol(i, props))
    name = html.escape(field, quote=True)
    rngs, syms = "\n".join(ranges), "\n".join(symbols)
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.28.0" styleCategories="Symbology|Labeling" labelsEnabled="1">
  <renderer-v2 type="graduatedSymbol" attr="{name}" graduatedMethod="GraduatedColor" symbollevels="0"
               enableorderby="0" forceraster="0" referencescale="-1">
    <ranges>
{rngs}
    </ranges>
    <symbols>
{syms}
    </symbols>
    <classificationMethod id="EqualInterval">
      <symmetricMode enabled="0" symmetrypoint="0" astride="0"/>
      <labelFormat format="%1 - %2" labelprecision="0" trimtrailingzeroes="1"/>
    </classificationMethod>
    <rotation/>
    <sizescale/>
  </renderer-v2>
  <labeling type="simple">
    <settings calloutType="simple">
      <text-style fieldName="{name}" isExpression="0" fontSize="11" fontSizeUnit="Point" fontWeight="75"
                  textColor="0,0,0,255" textOpacity="1" namedStyle="Bold" fontFamily="Sans Serif">
        <text-buffer bufferDraw="1" bufferSize="1" bufferSizeUnits="MM" bufferColor="255,255,255,255"
                     bufferOpacity="1" bufferJoinStyle="128" bufferNoFill="1"/>
      </text-style>
      <placement placement="1" priority="5" offsetType="0" dist="0" distUnits="MM"/>
      <rendering drawLabels="1" obstacle="1" scaleVisibility="0" upsidedownLabels="0" displayAll="1"/>
    </settings>
  </labeling>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerOpacity>1</layerOpacity>
  <layerGeometryType>2</layerGeometryType>
</qgis>
"""


def _fill_symbol(name: int, props: dict[str, str]) -> str:
    """A QGIS simple-fill symbol ``name`` with ``props`` (both the Option map and the legacy prop lines)."""
    options = "\n".join(f'            <Option type="QString" name="{k}" value="{v}"/>' for k, v in props.items())
    legacy = "\n".join(f'          <prop k="{k}" v="{v}"/>' for k, v in props.items())
    return f"""      <symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">
        <layer class="SimpleFill" enabled="1" locked="0" pass="0">
          <Option type="Map">
{options}
          </Option>
{legacy}
        </layer>
      </symbol>"""
