"""The HTTP routes, one module per capability; `mapping` turns domain results into responses."""
