"""Developer tooling: the ``lake`` CLI, the local crawl and query, template generation,
packaging, deploy, the upload push client and the dead-letter queue tool.

Not shipped: ``lake package`` leaves this package out of ``lib.zip``, and import-linter
keeps every shipped module from importing it."""
