"""PLACEHOLDER: models for access grants and door events."""
