"""Dataset contracts: the model and parser, header matching, the evolution check, and the
contract files themselves (``<dataset>/v<N>.yaml``). Pure Python: imports without Spark,
so the upload checks and the Lambdas use it too."""
