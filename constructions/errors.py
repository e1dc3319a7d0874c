"""The one error type for bad user input: its message is a single line naming the place."""


class InputError(ValueError):
    """Malformed or out-of-limits input. The CLI prints ``str(err)`` and exits with code 2."""
