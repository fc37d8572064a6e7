"""The only room that talks to the Kubernetes API (and the only importer of kubernetes_asyncio)."""
