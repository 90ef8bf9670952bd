"""Source readers: the reader interface (:mod:`lib.sources.base`), one module per raw format
and the registry that picks a contract's reader (:mod:`lib.sources.registry`)."""
