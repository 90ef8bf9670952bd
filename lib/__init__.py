"""Shared library of the Glue lake: contracts, contract enforcement over Spark DataFrames,
and the I/O adapters jobs use at their edges. Shipped to Glue with ``--extra-py-files``."""

__version__ = "0.1.0"
