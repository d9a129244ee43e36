"""Built-in stages; ``pipeline.registry.STAGES`` names them for ``pipelines.yaml``."""
