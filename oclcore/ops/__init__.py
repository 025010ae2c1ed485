"""Op implementations, one module per family; importing registers them."""

from . import copy, elementwise, views  # noqa: F401
