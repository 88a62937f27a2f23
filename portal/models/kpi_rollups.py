"""PLACEHOLDER: models for daily roll-ups for the dashboards."""
