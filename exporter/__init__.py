"""teleport-cloud-exporter: Prometheus metrics for Teleport Enterprise Cloud tenants."""

__version__ = "0.1.0"
