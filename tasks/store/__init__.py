"""Where data lives: the output store (every path of the output tree, atomic writes, freshness), the archive,
name validation, the Parquet tables and run manifests."""
