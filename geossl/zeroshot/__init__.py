"""Zero-shot land-cover labelling: SAM's automatic masks, each named by CLIP (``geossl zeroshot``)."""
