"""PLACEHOLDER: models for calendar feed tokens."""
