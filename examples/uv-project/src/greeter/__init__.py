"""A tiny package shipped in the image as source."""

import six


def greet(name: str) -> str:
    return f"hello {name} (six {six.__version__})"
