"""Market data: the Polygon flat-file layout, the synthetic generator, ingest to Parquet and the read API."""
