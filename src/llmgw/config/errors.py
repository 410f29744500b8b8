"""The one error configuration raises: it names what is wrong and the form it should have."""

from __future__ import annotations


class ConfigError(Exception):
    """A value we cannot use; the message names where it is and the expected form."""

    def __init__(self, variable: str, expected: str, value: str) -> None:
        super().__init__(f"{variable}={value!r} is invalid: expected {expected}")
        self.variable = variable

    @classmethod
    def in_file(cls, path: str, where: str, problem: str) -> ConfigError:
        """A problem in the configuration file: one line naming the file, the key, the problem."""
        error = cls.__new__(cls)
        Exception.__init__(error, f"{path}: {where}: {problem}")
        error.variable = "CONFIG_PATH"
        return error
