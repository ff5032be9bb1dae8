"""Analysis beyond simulation: the wafer yield model of the spare-column redundancy."""
