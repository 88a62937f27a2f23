"""PLACEHOLDER: models for room calendar links and synced events."""
