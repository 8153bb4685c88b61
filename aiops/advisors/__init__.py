"""The advisors: change risk and capacity, over what the other features know. Declared in ``feature.py``."""
