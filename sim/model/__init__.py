"""Golden models in numpy: number formats, wavelets, router, PE instruction set, fabric."""
