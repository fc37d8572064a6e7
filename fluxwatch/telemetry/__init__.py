"""fluxwatch.telemetry."""
