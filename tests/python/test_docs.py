"""The repository documents itself: every public Swift declaration carries a `///` comment, and
no comment, docstring or page cites a file the repository does not have (the team's spec lives
outside the repo; docs/ holds what the code needs)."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DECL = re.compile(r"^\s*(@\w+(\([^)]*\))?\s+)*(public|open)\s+(static\s+|final\s+|override\s+|mutating\s+|"
                  r"convenience\s+|required\s+|nonisolated\s+)*(let|var|func|init|subscript|struct|class|enum|"
                  r"protocol|typealias|case)\b")


def tracked(*patterns):
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.split()]


def swift_sources():
    # Sources/KernelsAVX512 is a second compilation of Sources/Kernels/Hot (symlinks).
    return [p for p in tracked("Sources/*.swift", "Sources/**/*.swift")
            if "KernelsAVX512" not in p.parts and not p.is_symlink()]


def undocumented(lines):
    for i, line in enumerate(lines):
        if not DECL.match(line):
            continue
        j = i - 1
        while j >= 0 and (lines[j].strip().startswith("@") or lines[j].strip().startswith("#if")):
            j -= 1
        if j < 0 or not lines[j].strip().startswith("///"):
            yield i + 1, line.strip()


def test_the_checker_sees_a_missing_comment():
    lines = ["/// Documented.", "public func a() {}", "", "public var b = 1", "    @inline(__always) public func c() {}"]
    assert [n for n, _ in undocumented(lines)] == [4, 5]


def test_every_public_swift_symbol_has_a_doc_comment():
    files = swift_sources()
    assert len(files) > 40
    missing = [f"{p.relative_to(ROOT)}:{n}: {text}" for p in files for n, text in undocumented(p.read_text().splitlines())]
    assert not missing, "public declarations without ///:\n" + "\n".join(missing)


# What counts as a citation of this repository: a Markdown page, or a path under one of its top-level
# folders. (Files of upstream repositories, system headers and URLs are cited as sources, not ours.)
CITED = re.compile(r"(?<![\w/.:-])((?:[\w-]+/)*[\w.-]+\.md|(?:Sources|docs|tests|Tests|scripts|tools|bench|examples|include|"
                   r"packaging)/[\w./-]*\w)")


def bad_citations(text, paths, names):
    """(line number, what) for each citation in `text` of a file not among `paths` / `names`."""
    for n, line in enumerate(text.splitlines(), 1):
        if "REFERENCE.md" in line or ("§" in line and "Numerical Recipes" not in line):
            yield n, line.strip()
        for cited in CITED.findall(line):
            cited = cited.rstrip(".")
            ok = (cited in paths or (ROOT / cited).exists()
                  or ("/" not in cited and cited in names) or any(q.endswith("/" + cited) for q in paths))
            if not ok:
                yield n, "cites " + cited


def test_the_citation_checker_sees_a_missing_file():
    text = "see docs/models.md\nsee docs/nowhere.md and REFERENCE.md §2\nSources/VidAttn/Missing.swift\n"
    assert [n for n, _ in bad_citations(text, {"docs/models.md"}, {"models.md"})] == [2, 2, 2, 3]


def test_no_comment_cites_a_file_the_repo_lacks():
    files = tracked("Sources/**/*.swift", "Sources/*.swift", "include/*.h", "examples/python/vidattn/*.py", "scripts/*.py",
                    "bench/*.py", "tools/*.py", "tests/python/*.py", "tests/c/*.c", "docs/*.md", "README.md",
                    "BENCHMARKS.md", "Makefile")
    names = {p.name for p in tracked()}
    paths = {str(p.relative_to(ROOT)) for p in tracked()}
    bad = [f"{p.relative_to(ROOT)}:{n}: {what}" for p in files if p.name != "test_docs.py"
           for n, what in bad_citations(p.read_text(), paths, names)]
    assert not bad, "citations of files the repository lacks:\n" + "\n".join(bad)
