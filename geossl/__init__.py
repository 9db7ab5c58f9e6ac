"""geossl: land-cover mapping from satellite and aerial imagery with few labels."""

__version__ = "0.1.0"
