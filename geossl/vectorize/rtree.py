"""Bulk-load a SQLite R-tree (a GeoPackage spatial index) from bounding boxes, packed once (STR).

Inserting rows one at a time into an SQLite R-tree costs about 50 µs each (R*-tree splits and reinserts):
~30 s for 600k polygons. GDAL avoids that for a layer written in one go by packing the tree itself; a layer
written in batches would not get that. So the tree is packed here with Sort-Tile-Recursive (Leutenegger et
al., 1997) and written straight into the R-tree's three shadow tables, in SQLite's own format (rtree.c):

- ``<t>_node(nodeno, data)``: each node a blob of the table's node size: 2-byte big-endian tree depth (read
  from the root, node 1), 2-byte cell count, then cells of an 8-byte big-endian id (a row's id in a leaf, a
  child node number above) and the box as 4 big-endian float32 ``minx, maxx, miny, maxy``;
- ``<t>_rowid(rowid, nodeno)``: the leaf of each row;  ``<t>_parent(nodeno, parentnode)``: each non-root node's
  parent.

Boxes are rounded outwards to float32 as SQLite does. SQLite's ``rtreecheck()`` verifies the result (tests).
"""

from __future__ import annotations

import math
import sqlite3

import numpy as np

_CELL = np.dtype([("id", ">i8"), ("box", ">f4", (4,))])
_ROWS_PER_INSERT = 50_000


def outward_float32(bounds: np.ndarray) -> np.ndarray:
    """``(n, 4)`` boxes ``minx, miny, maxx, maxy`` as float32, minima rounded down and maxima up."""
    b = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
    out = b.astype(np.float32)
    lo, hi = out[:, :2], out[:, 2:]
    lo[:] = np.where(lo.astype(np.float64) > b[:, :2], np.nextafter(lo, np.float32(-np.inf)), lo)
    hi[:] = np.where(hi.astype(np.float64) < b[:, 2:], np.nextafter(hi, np.float32(np.inf)), hi)
    return out


def _str_order(boxes: np.ndarray, capacity: int) -> np.ndarray:
    """Order of ``boxes`` so that consecutive runs of ``capacity`` make compact nodes (Sort-Tile-Recursive)."""
    n = len(boxes)
    slices = max(1, math.ceil(math.sqrt(math.ceil(n / capacity))))
    per_slice = slices * capacity
    cx = boxes[:, 0].astype(np.float64) + boxes[:, 2]
    cy = boxes[:, 1].astype(np.float64) + boxes[:, 3]
    by_x = np.argsort(cx, kind="stable")
    slice_of = np.empty(n, dtype=np.int64)
    slice_of[by_x] = np.arange(n) // per_slice
    return np.lexsort((cy, slice_of))


def _nodes(ids: np.ndarray, boxes: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Pack entries into nodes of ``capacity`` cells (STR order, consecutive runs).

    Returns the cells (structured, node after node, nodes padded to ``capacity`` with id 0; entry ``k`` in
    packed order is in node ``k // capacity``) and the nodes' boxes.
    """
    order = _str_order(boxes, capacity)
    n_nodes = math.ceil(len(ids) / capacity)
    cells = np.zeros(n_nodes * capacity, dtype=_CELL)
    cells["id"][:len(ids)] = ids[order]
    starts = np.arange(0, len(ids), capacity)
    node_boxes = np.empty((len(starts), 4), dtype=np.float32)
    for k, column in enumerate((0, 2, 1, 3)):  # cells hold minx, maxx, miny, maxy; a column at a time (memory)
        values = boxes[order, column]
        cells["box"][:len(ids), k] = values
        node_boxes[:, column] = (np.minimum if column < 2 else np.maximum).reduceat(values, starts)
    return cells.reshape(n_nodes, capacity), node_boxes


def bulk_load(db: sqlite3.Connection, table: str, ids: np.ndarray, bounds: np.ndarray) -> None:
    """Replace the content of the R-tree ``table`` (columns id, minx, maxx, miny, maxy) with these boxes.

    Args:
        db: an open connection; the caller commits.
        table: the R-tree virtual table, which must exist (its node size is read from its root).
        ids: the row id of each box.
        bounds: ``(n, 4)`` boxes ``minx, miny, maxx, maxy`` in float32, rounded outwards
            (:func:`outward_float32`).
    """
    node_size = len(db.execute(f"SELECT data FROM {_quoted(table + '_node')} WHERE nodeno = 1").fetchone()[0])
    capacity = (node_size - 4) // _CELL.itemsize
    for suffix in ("node", "rowid", "parent"):
        db.execute(f"DELETE FROM {_quoted(f'{table}_{suffix}')}")
    ids = np.asarray(ids, dtype=np.int64)
    boxes = np.asarray(bounds, dtype=np.float32).reshape(-1, 4)
    if len(ids) == 0:
        db.execute(f"INSERT INTO {_quoted(table + '_node')} VALUES (1, ?)", (bytes(node_size),))
        return

    # Node numbers: the root is 1, then each level below in turn; the levels are built and written bottom-up,
    # one at a time (bounded memory), so their sizes are worked out first.
    sizes = [math.ceil(len(ids) / capacity)]
    while sizes[-1] > 1:
        sizes.append(math.ceil(sizes[-1] / capacity))
    first = np.cumsum([1, *sizes[::-1]])[::-1][1:]  # first node number of each level, leaves first
    entry_ids, entry_boxes = ids, boxes
    for level, n_nodes in enumerate(sizes):
        cells, node_boxes = _nodes(entry_ids, entry_boxes, capacity)
        numbers = first[level] + np.arange(n_nodes)
        _write_nodes(db, table, cells, numbers, len(entry_ids), len(sizes) - 1, node_size)
        # Each entry's node: entry k in packed order is in node k // capacity.
        child = cells["id"].ravel()[:len(entry_ids)]
        by_child = np.argsort(child, kind="stable")
        target = _quoted(f"{table}_{'rowid' if level == 0 else 'parent'}")
        for part in _chunks(len(by_child), _ROWS_PER_INSERT):
            rows = by_child[part]
            db.executemany(f"INSERT INTO {target} VALUES (?, ?)",
                           zip(child[rows].tolist(), numbers[rows // capacity].tolist(), strict=True))
        del cells, child, by_child
        entry_ids, entry_boxes = numbers.astype(np.int64), node_boxes


def _write_nodes(db: sqlite3.Connection, table: str, cells: np.ndarray, numbers: np.ndarray, n_entries: int,
                 depth: int, node_size: int) -> None:
    """Insert one level's nodes (``cells``: ``(nodes, capacity)``, numbered ``numbers``) as blobs."""
    n_nodes, capacity = cells.shape
    counts = np.minimum(capacity, n_entries - np.arange(n_nodes) * capacity)
    header = np.column_stack([np.where(numbers == 1, depth, 0), counts]).astype(">u2")
    for part in _chunks(n_nodes, _ROWS_PER_INSERT // capacity + 1):  # bounded memory: a chunk at a time
        rows = cells[part]
        blobs = np.zeros((len(rows), node_size), dtype=np.uint8)
        blobs[:, :4] = header[part].view(np.uint8).reshape(-1, 4)
        blobs[:, 4:4 + capacity * _CELL.itemsize] = rows.view(np.uint8).reshape(len(rows), -1)
        db.executemany(f"INSERT INTO {_quoted(table + '_node')} VALUES (?, ?)",
                       zip(numbers[part].tolist(), (row.tobytes() for row in blobs), strict=True))


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(start, start + size) for start in range(0, n, size)]
