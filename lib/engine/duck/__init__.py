"""The contract on DuckDB: the second engine (see docs/architecture.md, "Two engines")."""
