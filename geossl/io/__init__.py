"""Raster and file I/O shared by every step: lazy reads, COG writes, styles, atomic outputs."""
