"""Adapters to outside systems. All network I/O to other systems lives in this package."""
