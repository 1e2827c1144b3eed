"""Shared by the benchmark scripts: write one section of benchmarks/RESULTS.md."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def record(section: str, body: str) -> None:
    """Replace (or append) the block between ``<!-- section -->`` markers with ``body``."""
    empty = "# Benchmark results\n\nEach section is written by the script it names.\n"
    text = RESULTS.read_text() if RESULTS.exists() else empty
    block = f"<!-- {section} -->\n{body.strip()}\n<!-- /{section} -->"
    pattern = re.compile(rf"<!-- {re.escape(section)} -->.*?<!-- /{re.escape(section)} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
