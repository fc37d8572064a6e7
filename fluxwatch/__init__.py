"""fluxwatch: recovers Flux HelmReleases stuck at Ready=Unknown and watches the Flux controllers' Leases."""

__version__ = "0.1.0"
__all__ = ["__version__"]
