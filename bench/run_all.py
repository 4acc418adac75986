"""``make bench``: run every benchmark and write ``bench/RESULTS.md``.

Each script prints its own table (figure, unit, tgwatch, baseline, ratio, goal); this runner records
the machine and the date, runs the scripts one after another (never in parallel: they would
measure each other), and keeps each table verbatim, with its exit status, in one report.
Pass ``--quick`` for a smoke run with smaller inputs (not for the record).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\S* +\[\w+ *\]")
QUICK_NOTE = " (quick run: smaller inputs, not for the record)"

#: (script, full-run arguments, quick-run arguments)
BENCHES: list[tuple[str, list[str], list[str]]] = [
    ("ingest.py", [], ["--messages", "5000"]),
    ("parse.py", [], ["--seconds", "1"]),
    ("crawl.py", [], ["--posts", "400"]),
    ("backfill.py", [], ["--messages", "10000"]),
    ("matching.py", [], ["--n", "20000", "--queries", "500"]),
    ("retro_matching.py", [], ["--n", "20000", "--list", "500", "--e2e-media", "2000", "--sample", "500"]),
    ("hashing.py", [], ["--images", "60"]),
    ("faces.py", [], ["--images", "20", "--queries", "500"]),
    ("detection_queue.py", [], ["--jobs", "300"]),
    ("ledger.py", [], ["--entries", "5000"]),
    ("api.py", [], ["--messages", "5000"]),
    ("latency.py", [], ["--posts", "10", "--periods", "2"]),
    ("soak.py", ["--minutes", "30"], ["--minutes", "1"]),
]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu}; {os.cpu_count()} cores; {mem:.0f} GiB RAM; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def _merge(previous: str, fresh: list[str]) -> list[str]:
    """Sections of an earlier report in bench order, with the freshly run ones put in their place."""

    def name(section: str) -> str:
        return section.split("\n", 1)[0].split()[1]

    old = {name("## " + sec): "## " + sec for sec in previous.split("\n## ")[1:]}
    old.update({name(sec): sec for sec in fresh})
    return [old[script] for script, _, _ in BENCHES if script in old]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", help="script names to run")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    started = datetime.now(UTC)
    sections = []
    for script, full, quick in BENCHES:
        if args.only and script not in args.only:
            continue
        path = HERE / script
        if not path.exists():
            sections.append(f"## {script}\n\nnot present in this tree.\n")
            continue
        cmd = [sys.executable, str(path), *(quick if args.quick else full)]
        print(f"== {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
        took = time.perf_counter() - t0
        print(proc.stdout, flush=True)
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        # log lines the scripts' libraries print (store start/stop) are not figures
        body = "\n".join(ln for ln in proc.stdout.splitlines() if not LOG_LINE.match(ln)).strip() or "(no output)"
        if proc.returncode != 0:
            body += "\n\n" + proc.stderr.strip()[-3000:]
        sections.append(f"## {script} — {status}, {took:.0f} s\n\n```\n{body}\n```\n")
    header = (
        "# tgwatch benchmark results\n\n"
        f"- date: {started:%Y-%m-%d %H:%M} UTC{QUICK_NOTE if args.quick else ''}\n"
        f"- machine: {machine()}\n"
        "- how: `make bench` (`python bench/run_all.py`); each table is the script's own output.\n\n"
    )
    if args.only and args.out.exists():  # a partial run replaces only its own sections
        sections = _merge(args.out.read_text(), sections)
    args.out.write_text(header + "\n".join(sections))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
