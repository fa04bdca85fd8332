"""The project documents itself: no reference to a design file outside the repository, and every relative
link in README.md and docs/*.md resolves to a file in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SKIP_DIRS = {".git", ".venv", "node_modules", "build", "dist", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
DESIGN, UP_SHARED = "DESIGN" + ".md", ".." + "/shared"  # spelled apart so this file does not match itself
TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml", ".json", ".sh", ".cfg", ".txt", ""}


def _files() -> list[Path]:
    out: list[Path] = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and rel.parts[0] != "docs":
            out.append(path)
    return out


def test_nothing_outside_docs_points_at_an_external_design_file() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _files()
        if DESIGN in (text := p.read_text(errors="replace")) or UP_SHARED in text
    ]
    assert offenders == []


def test_relative_links_in_readme_and_docs_resolve() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
