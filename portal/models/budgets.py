"""PLACEHOLDER: models for budgets and console settings."""
