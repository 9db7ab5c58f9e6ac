"""Errors that the command line reports as one line with exit code 2."""

from __future__ import annotations

from os import PathLike


class InputError(Exception):
    """Bad input from the user: a file, a manifest field or an option.

    The message always names the offending thing first, so the command line can print it as a
    single line (``path: problem``) and exit with code 2.
    """

    def __init__(self, where: str | PathLike[str], problem: str) -> None:
        self.where = str(where)
        self.problem = " ".join(str(problem).split())
        super().__init__(f"{self.where}: {self.problem}")

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str]]:
        """Pickle with both arguments, so the error survives a trip back from a Dask worker."""
        return (InputError, (self.where, self.problem))
