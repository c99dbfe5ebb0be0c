"""Writes a benchmark's figures into docs/performance.md, between its
`<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` markers."""

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def write_section(name, table, doc=DOC):
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    doc = Path(doc)
    text = doc.read_text()
    if start not in text or end not in text:
        print(f"{doc} has no {start} section: figures not written")
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{table}\n{end}{tail}")
    print(f"wrote the figures into {doc}")
