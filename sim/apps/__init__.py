"""Workloads on the fabric: weight files, defect maps, the digits MLP, running layers, heat maps."""
