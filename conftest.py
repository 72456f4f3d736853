"""Collection rules for the doctests of ``deg/`` (pytest collects them with --doctest-modules)."""

import importlib.util

# deg.sklearn needs scikit-learn, an extra: without it the module cannot even be imported
collect_ignore = [] if importlib.util.find_spec("sklearn") else ["deg/sklearn.py"]
