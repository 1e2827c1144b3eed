"""Files written whole or not at all.

:func:`atomic_output` gives a writer a temporary path in the target's folder, then flushes it
to disk (``fsync``) and renames it over the target. If anything fails on the way — an error
of the writer, a full disk, ``KeyboardInterrupt`` — the temporary file is removed and a file
that was already at the target is left as it was. Every roisynth writer goes through it:
tables (:func:`roisynth.io.write_table`), model files, the HTML report and its figures, NIfTI
images.
"""

from __future__ import annotations

import contextlib
import os
import secrets


def _fsync(path: str, directory: bool = False) -> None:
    """Flush ``path`` (a file, or a folder's entries) to disk; folders where the OS allows it."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        if directory:   # some platforms (Windows) cannot open a folder: its entries are flushed anyway
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_output_path(path) -> str:
    """Check that ``path`` can be written as a file; create its missing parent folders.

    Parameters
    ----------
    path : str or path-like
        The file to be written.

    Returns
    -------
    str
        ``path`` as a string.

    Raises
    ------
    IsADirectoryError
        If ``path`` is an existing folder.
    NotADirectoryError
        If a parent of ``path`` is a file.
    PermissionError
        If the folder of ``path`` cannot be created or written.

    Examples
    --------
    >>> import os, tempfile
    >>> from roisynth.utils.atomic import check_output_path
    >>> folder = tempfile.mkdtemp()
    >>> check_output_path(os.path.join(folder, "new", "rois.csv")) == os.path.join(folder, "new", "rois.csv")
    True
    >>> check_output_path(folder)
    Traceback (most recent call last):
    ...
    IsADirectoryError: cannot write ... it is a folder; name a file inside it
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path}: it is a folder; name a file inside it")
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(f"cannot write {path}: a part of its folder {parent} is a file") from None
    except PermissionError:
        raise PermissionError(f"cannot write {path}: no permission to create its folder {parent}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: no permission to write in its folder {parent}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write {path}: the file is read-only")
    return path


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed.

    The temporary file is named ``.<random>.tmp.<file name>``, in the same folder (so the rename
    is atomic) and with the same extension (so writers that choose a format or a compression by
    extension behave as for ``path``). Missing parent folders are created
    (:func:`check_output_path`). After the writer returns, the file is flushed to disk and renamed
    over ``path``; if the writer raises — any exception, ``KeyboardInterrupt`` included — or the
    flush or rename fails, the temporary file is removed, ``path`` is left untouched and the
    exception propagates (an ``OSError`` such as a full disk is raised again naming ``path``).

    Parameters
    ----------
    path : str or path-like
        The file to write.

    Yields
    ------
    str
        The temporary path for the writer to write to.

    Examples
    --------
    >>> import os, tempfile
    >>> from roisynth.utils.atomic import atomic_output
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_output(path) as tmp:
    ...     with open(tmp, "w") as handle:
    ...         _ = handle.write("complete")
    >>> try:
    ...     with atomic_output(path) as tmp:
    ...         with open(tmp, "w") as handle:
    ...             _ = handle.write("half")
    ...         raise RuntimeError("disk full")
    ... except RuntimeError:
    ...     pass
    >>> open(path).read(), os.listdir(os.path.dirname(path))
    ('complete', ['notes.txt'])
    """
    path = check_output_path(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{secrets.token_hex(4)}.tmp.{name}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno and exc.filename in (None, tmp):  # disk full, too large...
            raise OSError(exc.errno, f"cannot write {path}: {exc.strerror}; nothing was written") from exc
        raise
    _fsync(folder, directory=True)


def write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (:func:`atomic_output`).

    Parameters
    ----------
    path : str or path-like
        The file to write; missing parent folders are created.
    data : bytes
        The content.

    Examples
    --------
    >>> import os, tempfile
    >>> from roisynth.utils.atomic import write_bytes
    >>> path = os.path.join(tempfile.mkdtemp(), "figure.png")
    >>> write_bytes(path, b"PNG")
    >>> open(path, "rb").read()
    b'PNG'
    """
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
