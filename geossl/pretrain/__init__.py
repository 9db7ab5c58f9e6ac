"""Self-supervised pretraining of the segmentation encoder on the scene's own imagery (``geossl pretrain``)."""
