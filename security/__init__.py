"""Dynamic security scans (wapiti, sqlmap) against a running Foyer: `make scan`."""
