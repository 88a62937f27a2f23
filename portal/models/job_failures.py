"""PLACEHOLDER: models for dead-lettered background jobs."""
