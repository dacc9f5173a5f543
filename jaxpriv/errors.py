"""The one exception type users see: its message is printed as a single line by the CLI."""


class JaxprivError(Exception):
    """A user-facing error (bad input, missing weights, refused file); message is one clear line."""
