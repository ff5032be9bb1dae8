"""Host runtime: configuration-chain packets, the fabric driver and its golden and RTL backends."""
