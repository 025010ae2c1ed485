"""Op implementations, one module per family; importing a module registers
its aten ops, and every module in this folder is imported."""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
