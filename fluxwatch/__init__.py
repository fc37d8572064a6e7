"""fluxwatch: recovers Flux HelmReleases stuck at Ready=Unknown; watches Flux's leader Leases."""

__version__ = "0.1.0"
__all__ = ["__version__"]
