"""Runs the placement engine's criterion benchmark (crates/berth-placement/benches) and
writes the placements/s curve into docs/performance.md. Run through scripts/bench."""

import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK_START, MARK_END = "<!-- bench:placement:start -->", "<!-- bench:placement:end -->"
UNITS = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}


def main():
    out = subprocess.run(["cargo", "bench", "--locked", "-p", "berth-placement", "--bench", "placement"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    rows, size = [], None
    for line in out.splitlines():
        m = re.match(r"placement/[^/]+/(\d+)", line.strip())
        if m:
            size = int(m.group(1))
        m = re.search(r"thrpt:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if m and size is not None and "%" not in line:
            rows.append((size, float(m.group(1)) * UNITS[m.group(2)]))
            size = None
    if not rows:
        sys.exit(f"no figures in the benchmark output:\n{out}")
    table = "\n".join([
        f"Measured {time.strftime('%Y-%m-%d')}, one core, 1,000 tasks per request (median of 10 samples).",
        "",
        "| instances | placements/s | instance checks/s (placements/s × instances) |",
        "|---:|---:|---:|",
        *[f"| {n:,} | {rate:,.0f} | {rate * n / 1e6:,.0f} M |" for n, rate in rows],
    ])
    print(table)
    doc = ROOT / "docs/performance.md"
    text = doc.read_text()
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    doc.write_text(f"{head}{MARK_START}\n{table}\n{MARK_END}{tail}")


if __name__ == "__main__":
    main()
