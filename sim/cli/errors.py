"""How the ``wafer`` command reports the user's mistakes: one error class (exit status 2, one
line, never a traceback), library messages with their parameter names spelled as flags, and
output directories that cannot be written."""

from __future__ import annotations

import re
from pathlib import Path

import click

__all__ = ["UserError", "FLAG_NAMES", "with_flag_names", "output_error", "output_dir",
           "number_list"]


class UserError(click.ClickException):
    """A mistake in the user's input: reported as one line, exit status 2."""

    exit_code = 2


#: Python parameter names in library errors -> the flags of this command line.
FLAG_NAMES = {
    "rows": "--rows", "cols": "--cols", "spares": "--spares", "spares_list": "--spares",
    "density": "--density", "densities": "--density", "defect_density": "--density",
    "tile_area_mm2": "--tile-area", "samples": "--samples", "seed": "--seed",
    "num_colors": "--colors", "num_tasks": "--tasks", "sram_words": "--sram-words",
    "imem_words": "--imem-words",
}


def with_flag_names(message: str, flags: dict[str, str] = FLAG_NAMES) -> str:
    """``message`` with the Python parameter names it mentions spelled as command-line flags.

    Names with an underscore (``tile_area_mm2``) are replaced wherever they appear as a word;
    plain names (``rows``) only at the start of the message, where they name the parameter
    (elsewhere they are ordinary words: "use fewer rows").
    """
    for name, flag in flags.items():
        if "_" in name:
            message = re.sub(rf"(?<![\w-]){name}(?!\w)", flag, message)
        elif re.match(rf"{name}\b(?!-)", message):
            message = flag + message[len(name):]
    return message


def output_error(out_dir, exc: OSError) -> UserError:
    """The :class:`UserError` for an output directory ``out_dir`` that could not be written."""
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(out_dir) else ""
    return UserError(f"cannot write to the output directory {out_dir}{where}: {reason}; "
                     f"choose a writable directory with --out")


def output_dir(path) -> Path:
    """Create the output directory ``path`` (with its parents) now, so that an unusable one fails
    before the work, not after it.

    Raises
    ------
    UserError
        If it cannot be created.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc) from None
    return out


def number_list(text: str, what: str, kind: type[int] | type[float]) -> list:
    """The comma-separated numbers of option ``what`` (``kind`` int or float).

    Raises
    ------
    click.BadParameter
        If an item is not a number of that kind, or there is none.
    """
    noun = "integers" if kind is int else "numbers"
    try:
        values = [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{what} must be a comma-separated list of {noun}, "
                                 f"not {text!r}") from None
    if not values:
        raise click.BadParameter(f"{what} needs at least one value")
    return values
