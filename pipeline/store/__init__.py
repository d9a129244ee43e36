"""The gateway's store: what outlives a request (stored Responses), shared by replicas.

One small async interface (``base.Store``: get / put with a TTL / delete / atomic counters) and
three implementations: ``sqlite`` (embedded, a file in the data directory; the default),
``memory`` (this process only: tests) and ``redis`` (Redis or Valkey, for several replicas).
``open_store`` builds the configured one (``pipelines.yaml`` ``store:``, ``pipeline.config``).
"""

from pipeline.store.base import Store, open_store

__all__ = ["Store", "open_store"]
