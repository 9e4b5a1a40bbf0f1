"""docs/benchmarks.md: each bench script owns one marked section (<!-- NAME:start --> ... <!-- NAME:end -->)
and replaces only that section, so the scripts can run in any order."""
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOC_HEADER = ("# Benchmarks\n\nWritten by the scripts in `bench/` (see the README); each section is replaced by the "
              "run of its script and says the command, the machine and the data it was measured with.\n")


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(name: str, section: str) -> None:
    """Put ``section`` (which starts and ends with the markers of ``name``) into the document."""
    start, end = markers(name)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else DOC_HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)
