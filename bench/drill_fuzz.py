"""Drill: schemathesis fuzzes the live API (>= 10,000 generated requests) with a valid read/write key.

Starts a private PostgreSQL cluster, migrates it, loads a small demo shop with an active model
(so reads find data), creates an API key with the ``read,write`` scopes and serves the product with
gunicorn on 127.0.0.1. Then ``schemathesis run`` reads the schema served at ``/api/schema/`` and runs its phases
(examples, coverage, fuzzing, stateful) in ``--processes`` processes with different seeds, until the
server has answered ``--min-requests`` requests (then SIGINT) or ``--max-time`` is spent, with two checks:
``not_a_server_error`` and ``api_error_shape`` (bench/fuzz_hooks.py: every 4xx body is the API's
one error shape, crm/api/exceptions.py).

Counts come from gunicorn's access log (every request the server answered, the schema download
excepted); shapes from the check's log. 5xx are grouped by operation and by the exception the
server logged. Pass: ``requests >= --min-requests``, ``server_errors == 0``,
``client_errors_not_in_error_shape == 0``. Writes bench/results/drill_fuzz.json.

    python bench/drill_fuzz.py [--max-time 900] [--min-requests 10000] [--processes 2] [--seed 1]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from drill_common import Gunicorn, PrivatePostgres, django_env, manage, stop_process, write_result  # bench/ helpers

BENCH = Path(__file__).resolve().parent
ID_SEGMENT = re.compile(r"/[^/]+")


def _schemathesis() -> list[str]:
    executable = Path(sys.executable).parent / "schemathesis"
    if executable.exists():
        return [str(executable)]
    return [sys.executable, "-m", "schemathesis.cli"]


def _template(path: str, templates: list[tuple[re.Pattern, str]]) -> str:
    for pattern, name in templates:
        if pattern.fullmatch(path):
            return name
    return path


def _templates(schema: dict) -> list[tuple[re.Pattern, str]]:
    """``/api/v1/customers/{external_id}`` -> a regex matching concrete paths, most literal first."""
    result = []
    for path in schema.get("paths", {}):
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
        result.append((re.compile(regex), path))
    result.sort(key=lambda t: -len(t[1].replace("{", "").split("/")))
    return sorted(result, key=lambda t: t[1].count("{"))


def _answered(access_log: Path) -> int:
    if not access_log.exists():
        return 0
    with access_log.open("rb") as log:
        return sum(1 for line in log if b" /api/schema" not in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-time", type=int, default=900,
                        help="schemathesis time budget (seconds); the run stops sooner at --min-requests")
    parser.add_argument("--min-requests", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2, help="schemathesis processes (seeds seed, seed+1, ...)")
    parser.add_argument("--workers", type=int, default=2, help="concurrent workers per schemathesis process")
    parser.add_argument("--server-workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--max-examples", type=int, default=200, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tailored-drill-fuzz-") as tmp, PrivatePostgres() as pg:
        tmp_path = Path(tmp)
        url = pg.create_database("drill")
        env = django_env(url, DEBUG="false", ARTIFACTS_DIR=str(tmp_path / "artifacts"),
                         MEDIA_ROOT=str(tmp_path / "media"), EMAIL_URL="dummymail://", RECOMMENDATIONS_DEVICE="cpu",
                         API_THROTTLE_RATE="10000000/hour", API_THROTTLE_RATE_BULK="10000000/hour",
                         ALLOWED_HOSTS="127.0.0.1,localhost")
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "demo_data", "--customers", "60", "--items", "40", "--seed", "5")
        manage(env, "train", "--algorithm", "popularity", "--activate", timeout=600)
        key = manage(env, "create_api_key", "--name", "fuzz", "--scopes", "read,write").stdout.strip()
        access_log, error_log = tmp_path / "access.log", tmp_path / "server.log"
        check_log = tmp_path / "checks.jsonl"
        with Gunicorn(env, workers=args.server_workers, access_log=access_log, error_log=error_log,
                      timeout=120) as server:
            schema_url = f"{server.base}/api/schema/?format=json"
            import urllib.request

            request = urllib.request.Request(schema_url, headers={"Authorization": f"Bearer {key}"})
            raw_schema = urllib.request.urlopen(request, timeout=120).read()
            schema = json.loads(raw_schema)
            schema_file = tmp_path / "schema.json"  # fetched once: generating it takes seconds on a busy machine
            schema_file.write_bytes(raw_schema)
            fuzz_env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks", "DRILL_FUZZ_LOG": str(check_log),
                        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH), os.environ.get("PYTHONPATH", "")]))}
            command = [*_schemathesis(), "run", str(schema_file), "--url", server.base,
                       "-H", f"Authorization: Bearer {key}",
                       "--checks", "not_a_server_error,api_error_shape", "--continue-on-failure",
                       "--max-time", str(args.max_time), "--max-examples", str(args.max_examples),
                       "--workers", str(args.workers), "--no-shrink",
                       "--generation-database", "none", "--request-timeout", "60", "--no-color",
                       "--suppress-health-check", "all", "--warnings", "off", "--output-truncate", "true"]
            fuzz_started = time.monotonic()
            runs = []
            for n in range(args.processes):  # processes, not threads: generation is CPU-bound (GIL)
                out = (tmp_path / f"schemathesis-{n}.log").open("w")
                runs.append((subprocess.Popen([*command, "--seed", str(args.seed + n)], cwd=tmp, env=fuzz_env,
                                              stdout=out, stderr=subprocess.STDOUT), out))
            # Stop (SIGINT: schemathesis prints its summary) once the server has answered enough requests.
            stopped_at_min_requests = False
            while any(p.poll() is None for p, _ in runs) and time.monotonic() < fuzz_started + args.max_time + 300:
                if not stopped_at_min_requests and _answered(access_log) >= args.min_requests:
                    stopped_at_min_requests = True
                    for process, _ in runs:
                        with contextlib.suppress(ProcessLookupError):
                            process.send_signal(signal.SIGINT)
                time.sleep(2)
            exit_codes = []
            for process, out in runs:
                try:
                    exit_codes.append(process.wait(timeout=60))
                except subprocess.TimeoutExpired:
                    stop_process(process)
                    exit_codes.append("timeout")
                out.close()
            output = "\n".join((tmp_path / f"schemathesis-{n}.log").read_text(errors="replace")
                               for n in range(args.processes))
            fuzz_seconds = time.monotonic() - fuzz_started
            server_exceptions = server.logged_exceptions()
        templates = _templates(schema)
        statuses: Counter = Counter()
        by_operation_5xx: Counter = Counter()
        operations_seen = set()
        for line in access_log.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 3 or parts[1].startswith("/api/schema"):
                continue
            method, path, status = parts
            statuses[int(status)] += 1
            operation = f"{method} {_template(path, templates)}"
            operations_seen.add(operation)
            if int(status) >= 500:
                by_operation_5xx[operation] += 1
        checked = [json.loads(x) for x in check_log.read_text().splitlines() if x.strip()] \
            if check_log.exists() else []
    bad_shape = [c for c in checked if c.get("problem")]
    bad_by_operation: dict[str, Counter] = defaultdict(Counter)
    for c in bad_shape:
        bad_by_operation[c["op"]][f'{c["status"]} {c["problem"]}'] += 1
    server_errors = sum(n for s, n in statuses.items() if s >= 500)
    client_errors = sum(n for s, n in statuses.items() if 400 <= s < 500)
    total = sum(statuses.values())
    n_operations = sum(1 for p in schema.get("paths", {}).values() for m in p if m in
                       {"get", "post", "put", "patch", "delete"})
    summary_lines = [ln for ln in output.splitlines() if re.search(r"(passed|failed|error|Test cases|API Operations|"
                                                                   r"Phases|seconds|\d+ generated)", ln)]
    result = {
        "drill": "fuzz",
        "tool": f"schemathesis {_version()}",
        "database": "postgresql (private cluster)",
        "api_key_scopes": "read,write",
        "schema_operations": n_operations,
        "method_path_pairs_exercised": len(operations_seen),
        "requests": total,
        "responses_by_status": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": server_errors,
        "server_errors_by_operation": dict(by_operation_5xx.most_common()),
        "server_exceptions_logged": dict(server_exceptions),
        "client_errors": client_errors,
        "responses_checked_by_hook": len(checked),
        "client_errors_not_in_error_shape": sum(1 for c in bad_shape if 400 <= c["status"] < 500),
        "not_in_error_shape_by_operation": {k: dict(v) for k, v in bad_by_operation.items()},
        "examples_not_in_error_shape": bad_shape[:5],
        "examples_5xx": [c for c in checked if c["status"] >= 500][:5],
        "schemathesis_processes": args.processes,
        "schemathesis_exit_codes": exit_codes,
        "schemathesis_internal_errors": sum(int(m) for m in re.findall(r"(\d+) errors? in ", output)),
        "stopped_at_min_requests": stopped_at_min_requests,
        "schemathesis_summary": [line[:160] for line in summary_lines if len(line) < 400][-40:],
        "max_time_s": args.max_time,
        "fuzz_seconds": round(fuzz_seconds, 1),
        "requests_per_second": round(total / fuzz_seconds, 1) if fuzz_seconds else None,
        "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1),
    }
    result["passed"] = (total >= args.min_requests and server_errors == 0
                        and result["client_errors_not_in_error_shape"] == 0)
    write_result("drill_fuzz", result)
    if not summary_lines:
        print(output[-3000:], file=sys.stderr)
    sys.exit(0 if result["passed"] else 1)


def _version() -> str:
    from importlib.metadata import version

    return version("schemathesis")


if __name__ == "__main__":
    main()
