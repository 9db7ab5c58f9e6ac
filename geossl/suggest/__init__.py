"""Where to label next: windows of the unlabeled area ranked by the model's uncertainty, kept diverse.

``run`` (the command) → ``scan`` (one pass of the prediction machinery, reduced to cells) → ``candidates``
(windows inside the unlabeled area) → ``features`` (pooled encoder features) → ``select`` (the greedy score
``s = u · g``, defined there) → ``write`` (GeoPackage, QGIS style).
"""
