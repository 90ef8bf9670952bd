"""Contract enforcement on Spark: the Spark schemas, the row rules as Column expressions and
the pure ``DataFrame -> DataFrame`` transforms. Reads and writes nothing."""
