"""Turns wrk --latency output (stdin) into one JSON result line.

    wrk_json.py LABEL CONNECTIONS [SYSTEM] <wrk.txt
"""
import json
import re
import sys

path = sys.argv[1]
connections = int(sys.argv[2])
system = sys.argv[3] if len(sys.argv) > 3 else "realtime-chat (PostgreSQL)"
text = sys.stdin.read()


def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
pct = {p: ms(v, u) for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)}
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
timeouts = re.search(r"Socket errors:.*timeout (\d+)", text)
print(json.dumps({"scenario": "rest", "label": path, "system": system, "report": {
    "connections": connections,
    "requests_per_sec": rps, "p50_ms": pct.get("50"), "p99_ms": pct.get("99"),
    "non_2xx": int(errors.group(1)) if errors else 0,
    "timeouts": int(timeouts.group(1)) if timeouts else 0}}))
