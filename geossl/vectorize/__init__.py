"""Class raster → polygons for GIS: sieve, tiled polygonize, seamless merge, coverage simplify, styled output.

Modules in data-flow order: :mod:`.source` (inputs and their checks), :mod:`.sieve`, :mod:`.tile` (one tile:
read, :mod:`.trace` polygons, :mod:`.ragged` arrays), :mod:`.merge` (regions cut by tile borders),
:mod:`.simplify`, :mod:`.write` (pyogrio, GeoPackage style and :mod:`.rtree` index) and :mod:`.run` (the
command's flow).
"""
