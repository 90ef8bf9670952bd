"""The Glue lake's library, in role folders: ``contracts`` (pure Python), ``engine`` (pure
Spark), ``sources``, ``jobs``, ``ledger``, ``upload``, ``lake``, ``lambdas``, and ``tools``
(developer tooling). Shipped to Glue with ``--extra-py-files`` and to the upload Lambdas as
``lib.zip``, without ``tools``; see docs/architecture.md."""

__version__ = "0.1.0"
