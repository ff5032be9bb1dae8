"""Port numbering shared by the router, the tile, the golden models and the route tables.

Ports are numbered ``N=0, E=1, S=2, W=3, RAMP=4``; a route's ``rx`` and ``tx`` sets are 5-bit
masks with bit ``i`` standing for port ``i``.
"""

__all__ = [
    "PORT_NAMES", "NUM_PORTS", "N", "E", "S", "W", "RAMP", "OPPOSITE", "port_index", "mask_of",
]

#: Port names in index order.
PORT_NAMES = ("n", "e", "s", "w", "ramp")
NUM_PORTS = len(PORT_NAMES)
N, E, S, W, RAMP = range(NUM_PORTS)

#: The port a wavelet leaving through port ``p`` arrives on at the neighbour.
OPPOSITE = {N: S, S: N, E: W, W: E}


def port_index(name: str | int) -> int:
    """Return the index of a port given by name (``"n"``, ``"E"``, ``"ramp"``, ...) or index.

    Raises
    ------
    ValueError
        If the name or index does not name one of the five ports.
    """
    if isinstance(name, int) and not isinstance(name, bool):
        if 0 <= name < NUM_PORTS:
            return name
        raise ValueError(f"port index must be 0..{NUM_PORTS - 1}, not {name}")
    key = str(name).lower()
    if key not in PORT_NAMES:
        raise ValueError(f"unknown port {name!r}; the ports are {', '.join(PORT_NAMES)}")
    return PORT_NAMES.index(key)


def mask_of(ports) -> int:
    """Return the 5-bit port mask of an iterable of port names or indices."""
    mask = 0
    for p in ports:
        mask |= 1 << port_index(p)
    return mask
