"""Where the time goes: a command run under py-spy (all threads, native-free Python stacks) when it is
installed, else under cProfile (main thread only), summarised as the top functions by own time and by
inclusive time. Profiled runs are extra runs: their timings are never the ones in the table."""

import os
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

TOP = 25


def py_spy() -> str | None:
    """`$PY_SPY`, else `py-spy` on PATH or beside this interpreter."""
    candidates = [os.environ.get("PY_SPY"), shutil.which("py-spy"), str(Path(sys.executable).parent / "py-spy")]
    return next((c for c in candidates if c and Path(c).exists()), None)


def wrap(command: list[str], output: Path) -> tuple[list[str], str]:
    """`command` under a profiler writing to `output`; returns the command and which profiler it is."""
    spy = py_spy()
    if spy:
        return [spy, "record", "--format", "raw", "--rate", "250", "--nonblocking", "-o", str(output), "--",
                *command], "py-spy"
    if command[0].endswith("python") or command[0] == sys.executable:
        return [command[0], "-m", "cProfile", "-o", str(output), *command[1:]], "cProfile"
    return [sys.executable, "-m", "cProfile", "-o", str(output), *command], "cProfile"


_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['function']} ({path})"


def summarize_py_spy(path: Path) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return {
        "profiler": "py-spy",
        "samples": total,
        "own": [(f, round(100 * c / total, 1)) for f, c in own.most_common(TOP)] if total else [],
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in inclusive.most_common(TOP * 2)] if total else [],
    }


def summarize_cprofile(path: Path) -> dict[str, Any]:
    import pstats

    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = stats.stats  # type: ignore[attr-defined]

    def name(key: tuple[str, int, str]) -> str:
        return _short(f"{key[2]} ({key[0]}:{key[1]})")

    by_own = sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:TOP]
    by_cum = sorted(rows.items(), key=lambda kv: kv[1][3], reverse=True)[: TOP * 2]
    return {
        "profiler": "cProfile",
        "seconds": total,
        "own": [(name(k), round(100 * v[2] / total, 1)) for k, v in by_own],
        "inclusive": [(name(k), round(100 * v[3] / total, 1)) for k, v in by_cum],
    }


def summarize(path: Path, profiler: str) -> dict[str, Any]:
    if not path.exists():
        return {"profiler": profiler, "error": "no profile written"}
    return summarize_py_spy(path) if profiler == "py-spy" else summarize_cprofile(path)


def format_summary(name: str, summary: dict[str, Any], rows: int = 15) -> str:
    lines = [f"profile {name} ({summary.get('profiler')}, {summary.get('samples', summary.get('seconds'))}):"]
    lines += [f"  own {pct:5.1f}%  {frame}" for frame, pct in summary.get("own", [])[:rows]]
    return "\n".join(lines)
