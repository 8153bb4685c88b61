"""Optional extras of the ``flask-aiops`` distribution: a missing one is named at the call, never at import.

The core install serves ``Telemetry(app)`` and ``AIOps(app)``; a few features
need a heavy third-party package from an extra (``[replay]``: scikit-learn and
matplotlib; ``[llm]``: openai). Such a feature imports the package where it is
used, through ``require``, so importing the feature costs nothing and a
missing package answers with the command that installs it::

    the resilience replay needs scikit-learn: pip install 'flask-aiops[replay]'
"""
from __future__ import annotations

import importlib
from types import ModuleType

DISTRIBUTION = "flask-aiops"

#: Import name -> the name pip installs it by (where they differ).
PACKAGE_NAMES = {"sklearn": "scikit-learn"}


class MissingExtra(ImportError):
    """``feature`` needs ``package``, which comes with the extra ``extra`` and is not installed."""

    def __init__(self, feature: str, package: str, extra: str, module: str | None = None):
        self.feature, self.package, self.extra = feature, package, extra
        super().__init__(f"{feature} needs {package}: {install_command(extra)}", name=module)

    @property
    def install(self) -> str:
        """``pip install 'flask-aiops[EXTRA]'``."""
        return install_command(self.extra)


def install_command(extra: str) -> str:
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``module`` imported, or ``MissingExtra`` saying that ``feature`` (a phrase: "the resilience
    replay") needs it and which extra installs it. Call it where the package is used."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        root = module.partition(".")[0]
        raise MissingExtra(feature, PACKAGE_NAMES.get(root, root), extra, module) from exc
