"""Training data over an ingested catalog: torchgeo datasets, split regions, samplers, patches and views."""
