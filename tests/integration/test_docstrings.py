"""Docstrings: every example runs, every public name has a numpydoc docstring.

(a) The doctests of every module of roisynth, roisynth.imaging and roisynth.data (one test per
    module; a module that cannot be imported fails its test, none is skipped).
(b) The numpydoc structure of every public function and class of the public namespaces
    (``roisynth.__all__`` and the ``__all__`` of every subpackage): a docstring, a
    ``Parameters`` section when it takes parameters (besides ``self``), ``Returns`` for
    functions that return something (``Yields`` for generators and context managers; classes
    are exempt) and an ``Examples`` section.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import io
import pkgutil
import re
import textwrap
import types

import pytest

# Packages whose modules are walked; the last two live outside roisynth/ (setuptools package-dir).
ROOTS = ("roisynth", "roisynth.imaging", "roisynth.data")
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _discover() -> tuple[list[str], list[str], list[str]]:
    """(every module name, the package names, the packages whose import failed while walking)."""
    modules, packages, errors = set(ROOTS), set(ROOTS), []
    for root in ROOTS:
        path = importlib.import_module(root).__path__
        for info in pkgutil.walk_packages(path, root + ".", onerror=errors.append):
            modules.add(info.name)
            if info.ispkg:
                packages.add(info.name)
    return sorted(modules), sorted(packages), errors


MODULES, PACKAGES, WALK_ERRORS = _discover()


def test_every_package_walked():
    assert not WALK_ERRORS, f"packages that failed to import while walking: {WALK_ERRORS}"
    assert {"roisynth.metrics", "roisynth.imaging.masks"} <= set(MODULES)


@pytest.mark.parametrize("module_name", MODULES)
def test_doctests(module_name):
    module = importlib.import_module(module_name)  # an import error fails the test
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS, verbose=False)
    report = io.StringIO()
    for test in finder.find(module, module_name):
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    message = f"{result.failed} of {result.attempted} examples failed in {module_name}:\n"
    assert result.failed == 0, message + report.getvalue()


# ---------------------------------------------------------------------------- numpydoc structure


def _public_objects() -> list[tuple[str, object]]:
    """(qualified name, object) for the functions and classes named in the public ``__all__``s."""
    found = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)  # a name in __all__ that does not resolve is a failure
            if isinstance(obj, types.ModuleType) or not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue  # subpackages and constants (__version__) are documented elsewhere
            found.setdefault(id(obj), (f"{package}.{name}", obj))
    return sorted(found.values(), key=lambda item: item[0])


def _sections(doc: str) -> set[str]:
    """numpydoc section titles: a line followed by a line of dashes at least as long."""
    lines = doc.splitlines()
    return {
        title.strip()
        for title, underline in zip(lines, lines[1:])
        if title.strip() and re.fullmatch(r"\s*-{3,}\s*", underline) and len(underline.strip()) >= len(title.strip())
    }


def _takes_parameters(obj) -> bool:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(name not in ("self", "cls") for name in signature.parameters)


def _returns_value(function) -> bool:
    """True when the return annotation is not None, or (unannotated) a ``return <value>`` exists."""
    annotation = inspect.signature(function).return_annotation
    if annotation is not inspect.Signature.empty:
        return annotation not in (None, "None")
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return True
    body = tree.body[0]

    def walk(node):  # the function's own statements, not those of nested functions or classes
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            yield child
            yield from walk(child)

    def returns_value(node) -> bool:
        value = getattr(node, "value", None)
        return value is not None and not (isinstance(value, ast.Constant) and value.value is None)

    return any(isinstance(node, ast.Return) and returns_value(node) for node in walk(body))


def structure_problems(obj) -> list[str]:
    """What the docstring of a public function or class misses (empty list: complete)."""
    doc = inspect.getdoc(obj) if obj.__doc__ else None  # getdoc would inherit a parent's docstring
    if not doc:
        return ["no docstring"]
    sections, problems = _sections(doc), []
    if _takes_parameters(obj) and "Parameters" not in sections:
        problems.append("no Parameters section")
    if not inspect.isclass(obj):
        function = inspect.unwrap(obj)
        if inspect.isgeneratorfunction(function):  # generators and @contextmanager functions
            if "Yields" not in sections:
                problems.append("no Yields section")
        elif _returns_value(function) and "Returns" not in sections:
            problems.append("no Returns section")
    if "Examples" not in sections:
        problems.append("no Examples section")
    return problems


PUBLIC = _public_objects()


@pytest.mark.parametrize("obj", [obj for _, obj in PUBLIC], ids=[name for name, _ in PUBLIC])
def test_numpydoc_structure(obj):
    problems = structure_problems(obj)
    assert not problems, "; ".join(problems)
