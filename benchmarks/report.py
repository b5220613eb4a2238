"""The results table: one row per figure, with its baseline, the ratio and the issue's target (PASS/MISS)."""

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    section: str
    measurement: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    result: str = ""


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _mb(value: float) -> str:
    return f"{value:,.0f} MB"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def throughput_rows(result: dict[str, Any], *, main: bool, loop: dict[str, Any] | None) -> list[Row]:
    name = result["name"]
    limit = result["limit"]
    rates, ratios = result["rates"], result["ratios"]
    section = f"throughput {name}"
    limit_label = f"bare {limit['kind']} {_rate(limit['events_per_s'])}"
    rows = []
    if rates["ideal"]:
        rows.append(Row(section, "ideal = concurrency / latency", _rate(rates["ideal"])))
    for kind in ("httpx", "aiohttp"):
        bare = result["bare"][kind]
        rows.append(Row(section, f"bare {kind} (client CPU {bare['cpu_s']:.0f} s, server {bare['server_cpu_s']:.0f} s)",
                        _rate(rates[f"bare_{kind}"]), _rate(rates["ideal"]) if rates["ideal"] else "",
                        _ratio(rates[f"bare_{kind}"] / rates["ideal"]) if rates["ideal"] else ""))
    job = result["job"]
    rows.append(Row(section, f"job end to end: run {_s(job['run_wall_s'])}", _rate(rates["job_run"]), limit_label,
                    _ratio(ratios["job_run"]), "≥ 0.70" if main else "",
                    _verdict(ratios["job_run"] >= 0.7) if main else ""))
    rows.append(Row(section, f"job end to end: CLI process {_s(job['process_wall_s'])}", _rate(rates["job_process"]),
                    limit_label, _ratio(ratios["job_process"])))
    rows.append(Row(section, f"job submission step {_s(job['steps_s'].get('ticketfairy__submission_results'))}",
                    _rate(rates["job_submission_step"]), limit_label, _ratio(ratios["job_submission_step"]),
                    "≥ 0.90" if main else "", _verdict((ratios["job_submission_step"] or 0) >= 0.9) if main else ""))
    other = {k.split("__", 1)[-1]: v for k, v in job["steps_s"].items() if not k.endswith("submission_results")}
    rows.append(Row(section, "job: other steps", ", ".join(f"{k} {_s(v)}" for k, v in other.items())))
    rows.append(Row(section, "job: CPU s client / server", f"{job['client_cpu_s']:.1f} / {job['server_cpu_s']:.1f}"))
    if main and loop is not None:
        rows.append(Row(section, f"one-at-a-time loop ({loop['events']:,} events)", _rate(loop["events_per_s"])))
        speedup = rates["job_run"] / loop["events_per_s"]
        rows.append(Row(section, "job end to end vs the loop", _rate(rates["job_run"]), _rate(loop["events_per_s"]),
                        f"{speedup:.1f}×", "≥ 20×", _verdict(speedup >= 20)))
    return rows


BREAKDOWN = {
    "client": "project client alone (httpx API, aiohttp transport), no ledger",
    "submit": "BaseSubmitter.submit outside Dagster",
    "submit_switch_1ms": "  same, GIL switch interval 1 ms",
    "submit_uvloop": "  same, on uvloop",
    "ledger": "ledger alone: claims + outcomes, no HTTP",
}


def breakdown_rows(result: dict[str, Any], name: str) -> list[Row]:
    section = f"breakdown {name}"
    rows = [Row(section, f"select / transform {result['events']:,} (outside Dagster)",
                f"{_s(result['select_s'])} / {_s(result['transform_s'])}")]
    for key, label in BREAKDOWN.items():
        entry = result.get(key)
        if not entry:
            continue
        if "error" in entry:
            rows.append(Row(section, label, "error", entry["error"][:60]))
            continue
        rows.append(Row(section, f"{label} (CPU {entry['cpu_s']:.0f} s)", _rate(entry["events_per_s"]),
                        _s(entry["seconds"])))
    return rows


def selection_rows(results: dict[str, Any], first: int, events: int) -> list[Row]:
    rows = []
    for label, result in results.items():
        section = f"selection {label}"
        if "skipped" in result:
            rows.append(Row(section, "skipped", result["skipped"]))
            continue
        for name, entry in result["selectors"].items():
            indexed = entry.get("event_access") or "?"
            correct = "" if entry["correct"] else " WRONG COUNT"
            rows.append(Row(section, f"{name}: first {min(first, entry['expected']):,} ({indexed}){correct}",
                            _s(entry["first_s"]), "", "", "< 1 s" if events >= 1_000_000 else "(< 1 s at 1M)",
                            _verdict(entry["first_s"] < 1 and entry["correct"])))
            rows.append(Row(section, f"{name}: all {entry['count']:,}", _s(entry["all_s"]), "", "", "", ""))
            if entry["count"] > 1 and entry["all_s"]:
                rows[-1].ratio = _rate(entry["count"] / entry["all_s"])
        if result.get("jit_off_first_s"):
            rows.append(Row(section, "first rows again with jit=off",
                            ", ".join(f"{k} {v:.2f}" for k, v in result["jit_off_first_s"].items() if k != "url")))
    return rows


def memory_rows(memory: dict[str, Any] | None, selection: dict[str, Any] | None) -> list[Row]:
    rows = []
    if memory:
        small, large = memory["small"], memory["large"]
        rows.append(Row("memory", f"dry-run job, {small['events']:,} events", _mb(small["max_rss_mb"]),
                        f"empty run {_mb(small['empty_run_max_rss_mb'])}" if small["empty_run_max_rss_mb"] else ""))
        rows.append(Row("memory", f"dry-run job, {large['events']:,} events (run {_s(large['run_wall_s'])})",
                        _mb(large["max_rss_mb"]), f"{small['events']:,} events {_mb(small['max_rss_mb'])}",
                        f"+{_mb(memory['growth_mb'])}", "≤ +100 MB", _verdict(memory["growth_mb"] <= 100)))
    for label, result in (selection or {}).items():
        if "memory" not in result:
            continue
        m = result["memory"]
        rows.append(Row("memory", f"selection {label}: stream all {m['stream_all_count']:,}",
                        _mb(m["stream_all_max_rss_mb"]), f"one event {_mb(m['single_event_max_rss_mb'])}",
                        f"+{_mb(m['stream_all_max_rss_mb'] - m['single_event_max_rss_mb'])}"))
    return rows


def loading_rows(loading: dict[str, Any]) -> list[Row]:
    return [
        Row("loading", f"events load {loading['events']:,} JSON Lines ({_s(loading['process_wall_s'])})",
            _rate(loading["events_per_s"]), "5,000/s", _ratio(loading["events_per_s"] / 5000), "≥ 5,000/s",
            _verdict(loading["events_per_s"] >= 5000)),
        Row("loading", f"  excluding CLI start-up ({_s(loading['cli_startup_s'])})",
            _rate(loading["events_per_s_after_startup"])),
        Row("loading", "  same file again (all unchanged)", _rate(loading["reload_events_per_s"])),
    ]


def loading_memory_rows(found: dict[str, Any]) -> list[Row]:
    small, large, array = found["small"], found["large"], found["large_array"]
    growth = found["growth_mb"]
    return [
        Row("loading", f"events load peak RSS: {small['file_mb']} MB JSON Lines ({small['events']:,} events)",
            _mb(small["max_rss_mb"])),
        Row("loading", f"events load peak RSS: {large['file_mb']} MB JSON Lines ({large['events']:,} events)",
            _mb(large["max_rss_mb"]), f"{small['file_mb']} MB: {_mb(small['max_rss_mb'])}", f"+{_mb(growth)}",
            "≤ +50 MB", _verdict(growth <= 50)),
        Row("loading", f"events load peak RSS: {array['file_mb']} MB JSON array ({array['events']:,} events)",
            _mb(array["max_rss_mb"]), f"{small['file_mb']} MB lines: {_mb(small['max_rss_mb'])}",
            f"+{_mb(array['max_rss_mb'] - small['max_rss_mb'])}"),
    ]


def overhead_rows(overhead: dict[str, Any]) -> list[Row]:
    b, runs = overhead["baselines"], overhead["runs"]
    baseline = f"`--help` {_s(b['cli_help_s'])}"
    rows = [
        Row("overhead", "zero-event run, CLI process (fresh instance)", _s(runs["first"]["process_wall_s"]), baseline),
        Row("overhead", "zero-event run, CLI process", _s(runs["warm"]["process_wall_s"]), baseline),
        Row("overhead", "zero-event run, the Dagster run itself", _s(runs["warm"]["run_wall_s"]),
            f"its steps {_s(runs['warm']['steps_total_s'])}"),
        Row("overhead", "python start / import dagster", f"{_s(b['python_start_s'])} / {_s(b['import_dagster_s'])}"),
    ]
    return rows


def workers_rows(found: dict[str, Any]) -> list[Row]:
    """Sharded throughput per worker count and mode, against the bare-client limit of the same run."""
    if "skipped" in found:
        return [Row("workers", "skipped", found["skipped"])]
    limit = found["bare_aiohttp"]["events_per_s"]
    limit_label = f"bare aiohttp {_rate(limit)}"
    c = found["concurrency"]
    rows = [Row("workers", f"bare aiohttp, concurrency {c} (the single-process limit)", _rate(limit))]
    for run in found["runs"]:
        w, mode = run["workers"], run["mode"]
        how = f"{c} shared (Redis)" if mode == "shared" else f"{run['per_worker_concurrency']} per worker"
        section = f"workers {w}w {mode}"
        target = w == 2
        rows.append(Row(section, f"submission across {w} shard(s), concurrency {how}", _rate(run["submission_per_s"]),
                        limit_label, _ratio((run["submission_per_s"] or 0) / limit), "≥ 1.00" if target else "",
                        _verdict((run["submission_per_s"] or 0) >= limit) if target else ""))
        rows.append(Row(section, f"end to end: first run start to last run end {_s(run['end_to_end_s'])}",
                        _rate(run["end_to_end_per_s"]), limit_label, _ratio((run["end_to_end_per_s"] or 0) / limit)))
        rows.append(Row(section, f"CLI process {_s(run['process_wall_s'])}, peak in flight {run['peak_in_flight']}, "
                        f"peak {run['peak_per_second']}/s at the stand-in", _rate(run["process_per_s"])))
        zero = run["zero_event"]
        rows.append(Row(section, "zero-event run through the workers: CLI process / each run",
                        f"{_s(zero['process_wall_s'])} / {', '.join(_s(r) for r in zero['run_s'])}"))
    return rows


def format_table(rows: list[Row]) -> str:
    headers = ["section", "measurement", "value", "baseline", "ratio", "target", "result"]
    cells = [headers] + [[getattr(r, h) for h in headers] for r in rows]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    headers = ["section", "measurement", "value", "baseline", "ratio", "target", "result"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(str(getattr(row, h)).replace("|", "\\|") for h in headers) + " |")
    return "\n".join(lines)


def rows_json(rows: list[Row]) -> list[dict[str, str]]:
    return [asdict(r) for r in rows]
