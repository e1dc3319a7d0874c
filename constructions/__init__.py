"""The objects: model and dataset specs, exact evaluation, and the theorems' constructions."""
