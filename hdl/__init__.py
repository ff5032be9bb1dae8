"""Shared Amaranth building blocks: wavelet layout, links, buses, memories, number formats."""
