"""Built-in upstream types; ``pipeline.registry.UPSTREAMS`` names them for ``pipelines.yaml``."""
