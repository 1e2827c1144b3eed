"""Declared hyperparameter rules, checked when an estimator is fitted.

Every estimator declares, once and as data, what each constructor parameter may be::

    _parameter_constraints = {
        "n_hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "noise": [Options({"full", "diagonal"})],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["boolean"],
        "random_state": ["random_state"],
    }

A value is valid when it satisfies at least one constraint of its list. A constraint is a
:class:`Constraint`, ``None`` (the value None), ``"boolean"``, ``"random_state"`` (None, an
int in [0, 2³²) or a ``numpy.random.RandomState``), ``"array-like"`` (a list, tuple, array, Series or
Index), ``callable`` (any callable) or a class (an instance of it). Subclasses extend their
base's rules with ``{**Base._parameter_constraints, ...}``. :func:`validate_params`, called
first thing in every ``fit``, raises :class:`~roisynth.exceptions.InvalidParameterError`
(a ``ValueError`` and a ``TypeError``) naming the estimator, the parameter, the bad value and
what is allowed.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from ..exceptions import InvalidParameterError
from .validation import is_random_state


class Constraint(ABC):
    """A rule one parameter value may satisfy; ``str()`` describes the allowed values.

    Examples
    --------
    >>> rule = make_constraint("boolean")
    >>> isinstance(rule, Constraint), rule.is_satisfied_by(True), str(rule)
    (True, True, 'a bool')
    """

    @abstractmethod
    def is_satisfied_by(self, value) -> bool:
        """Whether ``value`` follows the rule.

        Parameters
        ----------
        value : object
            A parameter value.

        Returns
        -------
        satisfied : bool
            True when ``value`` follows the rule.
        """


class Interval(Constraint):
    """A real or integer number within bounds.

    Parameters
    ----------
    type : {numbers.Integral, numbers.Real}
        Integers only, or any real number (ints included). Booleans, NaN and infinities are
        never accepted.
    left : float or None
        The lower bound; None is unbounded below.
    right : float or None
        The upper bound; None is unbounded above.
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the interval.

    Examples
    --------
    >>> import numbers
    >>> rule = Interval(numbers.Real, 0, 0.5, closed="left")
    >>> rule.is_satisfied_by(0.0), rule.is_satisfied_by(0.5)
    (True, False)
    >>> str(rule)
    'a float in [0, 0.5)'
    """

    def __init__(self, type, left, right, *, closed: str):
        if type not in (numbers.Integral, numbers.Real):
            raise ValueError(f"type must be numbers.Integral or numbers.Real, got {type!r}")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed must be 'left', 'right', 'both' or 'neither', got {closed!r}")
        self.type, self.left, self.right, self.closed = type, left, right, closed

    def is_satisfied_by(self, value) -> bool:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, self.type) or not math.isfinite(value):
            return False
        above = self.left is None or value > self.left or (value == self.left and self.closed in ("left", "both"))
        below = self.right is None or value < self.right or (value == self.right and self.closed in ("right", "both"))
        return above and below

    def __str__(self) -> str:
        kind = "an int" if self.type is numbers.Integral else "a float"
        low = "(-inf" if self.left is None else ("[" if self.closed in ("left", "both") else "(") + f"{self.left:g}"
        high = "inf)" if self.right is None else f"{self.right:g}" + ("]" if self.closed in ("right", "both") else ")")
        return f"{kind} in {low}, {high}"


class Options(Constraint):
    """One of a set of values (strings, as a rule).

    Parameters
    ----------
    options : iterable of hashable
        The allowed values.

    Examples
    --------
    >>> str(Options({"full", "diagonal"}))
    "'diagonal', 'full'"
    """

    def __init__(self, options):
        self.options = frozenset(options)

    def is_satisfied_by(self, value) -> bool:
        try:
            return value in self.options
        except TypeError:  # unhashable values are no option
            return False

    def __str__(self) -> str:
        return ", ".join(sorted(map(repr, self.options)))


class _Value(Constraint):
    """Exactly ``value`` (``None`` in a constraint list)."""

    def __init__(self, value):
        self.value = value

    def is_satisfied_by(self, value) -> bool:
        return value is self.value

    def __str__(self) -> str:
        return repr(self.value)


class _Predicate(Constraint):
    """Values for which ``test`` is true, described by ``description``."""

    def __init__(self, test, description: str):
        self.test, self.description = test, description

    def is_satisfied_by(self, value) -> bool:
        return bool(self.test(value))

    def __str__(self) -> str:
        return self.description


_NAMED = {
    "boolean": _Predicate(lambda v: isinstance(v, (bool, np.bool_)), "a bool"),
    "random_state": _Predicate(is_random_state, "None, an int in [0, 2**32) or a numpy RandomState"),
    "array-like": _Predicate(lambda v: isinstance(v, (list, tuple, np.ndarray, pd.Series, pd.Index)),
                             "a list or array"),
}


def make_constraint(rule) -> Constraint:
    """The :class:`Constraint` of one entry of a constraint list (see the module docstring).

    Parameters
    ----------
    rule : Constraint, None, str, callable or type
        A :class:`Constraint` (returned as it is), None, a named constraint
        (``"boolean"``, ``"random_state"``, ``"array-like"``), the builtin ``callable`` or
        a class.

    Returns
    -------
    constraint : Constraint
        The rule as a constraint object.

    Examples
    --------
    >>> str(make_constraint(None)), str(make_constraint("random_state")), str(make_constraint(str))
    ('None', 'None, an int in [0, 2**32) or a numpy RandomState', 'an instance of str')
    """
    if isinstance(rule, Constraint):
        return rule
    if rule is None:
        return _Value(None)
    if isinstance(rule, str):
        if rule not in _NAMED:
            raise ValueError(f"unknown constraint {rule!r}; named constraints: {sorted(_NAMED)}")
        return _NAMED[rule]
    if rule is callable:
        return _Predicate(callable, "a callable")
    if isinstance(rule, type):
        return _Predicate(lambda v: isinstance(v, rule), f"an instance of {rule.__name__}")
    raise TypeError(f"not a parameter constraint: {rule!r}")


def validate_params(estimator) -> None:
    """Check every constructor parameter of ``estimator`` against its class's declared
    ``_parameter_constraints``.

    Parameters
    ----------
    estimator : BaseEstimator
        An estimator whose class declares a rule list for each of its parameters.

    Raises
    ------
    InvalidParameterError
        For the first parameter whose value satisfies none of its rules, e.g.
        ``ContrastiveVAE: noise='x' is not valid; allowed: 'diagonal', 'full'``.

    Examples
    --------
    >>> from roisynth import LinearContrastive
    >>> validate_params(LinearContrastive(n_common=0))
    Traceback (most recent call last):
    ...
    roisynth.exceptions.InvalidParameterError: LinearContrastive: n_common=0 is not valid; allowed: an int in [1, inf)
    """
    name = type(estimator).__name__
    declared = type(estimator)._parameter_constraints
    params = estimator.get_params(deep=False)
    undeclared = sorted(set(params) - set(declared))
    if undeclared:
        raise TypeError(f"{name} declares no constraint for parameter(s) {undeclared} in _parameter_constraints")
    for param, rules in declared.items():
        constraints = [make_constraint(rule) for rule in rules]
        value = params[param]
        if not any(c.is_satisfied_by(value) for c in constraints):
            allowed = " or ".join(map(str, constraints))
            raise InvalidParameterError(f"{name}: {param}={value!r} is not valid; allowed: {allowed}")
