"""A webhook relay sidecar: durable ingest, signed delivery with retries."""

__version__ = "0.1.0"

__all__ = ["__version__"]
