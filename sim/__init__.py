"""Everything of openwafer that is not RTL, one sub-package per concept (docs/architecture.md)."""
