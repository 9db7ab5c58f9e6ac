"""Large-scene prediction: streamed, blended windows → class / confidence / probability COGs.

Modules by data flow: :mod:`~geossl.predict.scene` (checks) → :mod:`~geossl.predict.reader` (row bands) →
:mod:`~geossl.predict.runner` (batched model, TTA) → :mod:`~geossl.predict.accumulate` (blend, finished rows) →
:mod:`~geossl.predict.encode` (pixel values) → :mod:`~geossl.predict.writers` (pieces, COGs), driven per block by
:mod:`~geossl.predict.block` and per run by :mod:`~geossl.predict.run`. Window geometry and blending weights
live in :mod:`geossl.windows`.
"""
