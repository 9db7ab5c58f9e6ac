"""One Processing algorithm per geossl command."""

from .ingest import Ingest
from .pipeline import RunPipeline
from .predict import Predict
from .suggest import Suggest
from .train import Train
from .vectorize import Vectorize

#: In the order of the labelling loop.
ALGORITHMS = (Ingest, Train, Suggest, Predict, Vectorize, RunPipeline)
