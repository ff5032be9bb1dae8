"""Interface signatures defined by their parameters."""

from amaranth.lib import wiring

__all__ = ["ParamSignature"]


class ParamSignature(wiring.Signature):
    """A :class:`amaranth.lib.wiring.Signature` defined by parameters: the attributes named in
    the class's ``PARAMS``. Two are equal when their types and parameters are (so
    ``wiring.connect`` accepts matching instances), and one prints as ``Name(values)``."""

    PARAMS: tuple[str, ...] = ()

    def _key(self) -> tuple:
        return tuple(getattr(self, name) for name in self.PARAMS)

    def __eq__(self, other):
        return type(other) is type(self) and other._key() == self._key()

    def __hash__(self):
        return hash((type(self), self._key()))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(repr(v) for v in self._key())})"
