"""The one exception type the CLI turns into a one-line message and a nonzero exit."""


class FireforgeError(Exception):
    """A user-facing error: the message names what is wrong, where, and what to do."""
