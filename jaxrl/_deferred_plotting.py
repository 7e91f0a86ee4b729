"""gymnax without its plotting imports at start-up.

``import gymnax`` imports every gymnax environment, and two of them import plotting
libraries at module level for their ``render`` methods only: ``misc/pong.py`` imports
seaborn (which imports scipy.stats and pandas) and several import ``matplotlib.pyplot``.
That is about 1.6 of the 4.5 CPU seconds that ``import jaxrl.envs`` takes on this machine,
paid by every ``jaxrl`` command and every process that makes an environment, rendering
or not.

:func:`install` (called by ``jaxrl/__init__.py``, so before anything of jaxrl imports
gymnax) puts a finder on ``sys.meta_path`` that waits for the first ``import gymnax``.
While that one import runs, ``seaborn`` and ``matplotlib.pyplot`` (those not imported
yet) are placeholder modules: the names gymnax binds (``sns``, ``plt``) import the real
module on their first attribute access, that is when an environment renders. When the
import ends the placeholders leave ``sys.modules``, so any later ``import seaborn`` is
the real one. (``importlib.util.LazyLoader`` cannot do this on Python 3.11: the import
statement itself reads the lazy module's ``__spec__``, which loads it.)
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

DEFERRED = ("seaborn", "matplotlib.pyplot")


class _Placeholder(types.ModuleType):
    """Stands for a module not imported yet; the first attribute read imports it."""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


class _GymnaxLoader(importlib.abc.Loader):
    """gymnax's own loader, run with the placeholders in ``sys.modules``."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__.loader = module.__loader__ = self.loader  # gymnax sees its own
        placeholders = {n: _Placeholder(n) for n in DEFERRED if n not in sys.modules}
        sys.modules.update(placeholders)
        try:
            self.loader.exec_module(module)
        finally:
            for name, placeholder in placeholders.items():
                if sys.modules.get(name) is placeholder:
                    del sys.modules[name]


class _FirstGymnaxImport(importlib.abc.MetaPathFinder):
    """Finds ``gymnax`` once, through the other finders, and wraps its loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "gymnax":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _GymnaxLoader(spec.loader)
        return spec


def install() -> None:
    """Defers the plotting imports of the first ``import gymnax`` (if it is still to come)."""
    if "gymnax" not in sys.modules and not any(
        isinstance(f, _FirstGymnaxImport) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _FirstGymnaxImport())
