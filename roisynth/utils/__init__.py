"""Helpers shared by the estimators: input validation, model files, covariate and frame helpers."""
