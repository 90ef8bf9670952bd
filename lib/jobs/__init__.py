"""Glue jobs: the entry every ``glue_jobs/<dataset>/v<N>/job.py`` calls, its arguments, the
runtime adapter (Glue or a local SparkSession), the run itself as named steps, publishing
and the run report."""
