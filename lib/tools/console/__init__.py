"""The lake console (``lake serve``): a local web front end on the same ledger and zones as
the CLI. See :mod:`lib.tools.console.app`."""
