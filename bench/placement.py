"""Runs the placement engine's criterion benchmark (crates/berth-placement/benches) and
writes the placements/s curve into docs/performance.md. Run through scripts/bench."""

import re
import subprocess
import sys
import time
from pathlib import Path
from figures import write_section

ROOT = Path(__file__).resolve().parents[1]
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
        "| instances | placements/s | ms per request of 1,000 tasks |",
        "|---:|---:|---:|",
        *[f"| {n:,} | {rate:,.0f} | {1000 / rate * 1000:,.2f} |" for n, rate in rows],
    ])
    print(table)
    write_section("placement", table)


if __name__ == "__main__":
    main()
