"""Uploads: the file checks (pure: they read a stream, never Spark) and landing a checked
file in a local lake."""
