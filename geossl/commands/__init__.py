"""One module per ``geossl`` subcommand; :mod:`geossl.cli` registers them."""
