"""Badge and access-control systems: the provider contract and its adapters."""
