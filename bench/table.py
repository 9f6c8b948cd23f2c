"""Prints the benchmark results (JSON lines on stdin) as Markdown tables."""
import json
import sys

rows = [json.loads(line) for line in sys.stdin if line.strip().startswith("{")]


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


pairs = [r for r in rows if r["scenario"] == "pairs"]
if pairs:
    ceiling = next((r["report"]["msgs_per_sec"] for r in pairs if r["label"].startswith("ceiling")), None)
    print("### Scenario 1: 1:1 throughput and latency\n")
    print("| system | msg/s | % of ceiling | p50 ms | p99 ms | max ms | missing | duplicated | reordered | server CPU s | generator CPU s | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in pairs:
        p = r["report"]
        share = f"{100 * p['msgs_per_sec'] / ceiling:.0f}%" if ceiling else "n/a"
        print(f"| {r['label']} | {fmt(p['msgs_per_sec'], 0)} | {share} | {fmt(p['p50_ms'])} | {fmt(p['p99_ms'])} | "
              f"{fmt(p['max_ms'])} | {p['missing']} | {p['duplicated']} | {p['reordered']} | "
              f"{fmt(p['server_cpu_s'], 2)} | {fmt(p['generator_cpu_s'], 2)} | {fmt(p['seconds'], 2)} |")
    print()

cluster = [r for r in rows if r["scenario"] == "cluster"]
if cluster:
    print("### Scenario 5: two nodes over Redis\n")
    print("Senders on node A, receivers on node B (\"A → B\"); \"% of one node\" is against the one-node "
          "(one-process) row of the same system in this run. CPU in seconds over the run; per message: "
          "Redis commands and bytes Redis sent out, divided by messages delivered.\n")
    print("| system | msg/s | % of one node | p50 ms | p99 ms | max ms | missing | duplicated | reordered | "
          "send errors | server CPU s | node A / node B CPU s | PostgreSQL CPU s | Redis CPU s | "
          "Redis commands per msg | Redis bytes out per msg | generator CPU s | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in cluster:
        p = r["report"]
        family = r["label"].split(",")[0]
        base = next((b for b in cluster if b["label"].split(",")[0] == family), r)
        share = f"{100 * p['msgs_per_sec'] / base['report']['msgs_per_sec']:.0f}%" \
            if base is not r and base["report"]["msgs_per_sec"] else "—"
        w = p.get("watched_cpu_s", {})
        nodes = f"{fmt(w['node A'], 2)} / {fmt(w['node B'], 2)}" if "node A" in w and "node B" in w else "—"
        redis = p.get("redis", {})
        per = lambda k: fmt(redis[k] / p["delivered"], 1) if k in redis and p["delivered"] else "n/a"
        print(f"| {r['label']} | {fmt(p['msgs_per_sec'], 0)} | {share} | {fmt(p['p50_ms'])} | {fmt(p['p99_ms'])} | "
              f"{fmt(p['max_ms'])} | {p['missing']} | {p['duplicated']} | {p['reordered']} | "
              f"{p['send_errors'] + p['unanswered']} | {fmt(p['server_cpu_s'], 2)} | {nodes} | "
              f"{fmt(p.get('postgres_cpu_s'), 2)} | {fmt(w.get('redis'), 2)} | {per('total_commands_processed')} | "
              f"{per('total_net_output_bytes')} | {fmt(p['generator_cpu_s'], 2)} | {fmt(p['seconds'], 2)} |")
    print()

fanout = [r for r in rows if r["scenario"] == "groups"]
if fanout:
    ceiling = next((r["report"]["deliveries_per_sec"] for r in fanout if r["label"].startswith("ceiling")), None)
    p0 = fanout[0]["report"]
    print("### Scenario 2a: group fan-out\n")
    print(f"{p0['groups']} groups of {p0['members_per_group']} connected members, one sender each, "
          f"{p0['messages_per_group']} messages per group; a delivery is one message reaching one member. "
          "Missing, duplicated and reordered are counted per member by `seq`.\n")
    print("| system | deliveries/s | % of ceiling | p50 ms | p99 ms | p99 to every member ms | max to every member ms | "
          "missing | duplicated | reordered | send errors | server CPU s | generator CPU s | wall s | warm-up ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in fanout:
        p = r["report"]
        share = f"{100 * p['deliveries_per_sec'] / ceiling:.0f}%" if ceiling else "n/a"
        print(f"| {r['label']} | {fmt(p['deliveries_per_sec'], 0)} | {share} | {fmt(p['p50_ms'])} | {fmt(p['p99_ms'])} | "
              f"{fmt(p['p99_all_ms'])} | {fmt(p['max_all_ms'])} | {p['missing']} | {p['duplicated']} | {p['reordered']} | "
              f"{p['send_errors'] + p['unanswered']} | {fmt(p['server_cpu_s'], 2)} | {fmt(p['generator_cpu_s'], 2)} | "
              f"{fmt(p['seconds'], 2)} | {fmt(p.get('warm_up_ms'), 0)} |")
    print()

big = [r for r in rows if r["scenario"] == "group_big"]
if big:
    p0 = big[0]["report"]
    print("### Scenario 2b: one big group\n")
    print(f"One group of {p0['members_per_group']:,} connected members, one message a second "
          f"({p0['messages_per_group']} messages).\n")
    print("| system | p50 to last member ms | p99 to last member ms | max ms | p99 any member ms | "
          "missing | duplicated | reordered | send errors | server CPU s | warm-up ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in big:
        p = r["report"]
        print(f"| {r['label']} | {fmt(p['p50_all_ms'])} | {fmt(p['p99_all_ms'])} | {fmt(p['max_all_ms'])} | "
              f"{fmt(p['p99_ms'])} | {p['missing']} | {p['duplicated']} | {p['reordered']} | "
              f"{p['send_errors'] + p['unanswered']} | {fmt(p['server_cpu_s'], 2)} | {fmt(p.get('warm_up_ms'), 0)} |")
    print()

stored = [r for r in rows if r["scenario"] == "group_rows"]
if stored:
    print("### Scenario 2: rows stored (PostgreSQL, after the run)\n")
    print("| system | messages sent (warm-ups included) | `messages` | `conversation_members` | `member_position_log` |")
    print("|---|---|---|---|---|")
    for r in stored:
        p = r["report"]
        print(f"| {r['label']} | {p['messages_sent']:,} | {p['messages']:,} | {p['conversation_members']:,} | "
              f"{p['member_position_log']:,} |")
    print()

conns = [r for r in rows if r["scenario"] == "connect"]
if conns:
    print("### Scenario 3: connect storm and idle memory\n")
    print("| system | sockets | failed | storm s | server RSS before MiB | after MiB | KiB per socket |")
    print("|---|---|---|---|---|---|---|")
    for r in conns:
        p = r["report"]
        mib = lambda k: fmt(k / 1024, 1) if k is not None else "n/a"
        print(f"| {r['label']} | {p['sockets']:,} | {p['failed']} | {fmt(p['storm_seconds'], 2)} | "
              f"{mib(p['server_rss_before_kib'])} | {mib(p['server_rss_after_kib'])} | {fmt(p['kib_per_socket'])} |")
    print()

rest = [r for r in rows if r["scenario"] == "rest"]
if rest:
    print("### Scenario 4: REST under load (wrk, 2 threads, 10 s per row)\n")
    print("| system | request | connections | requests/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|---|---|")
    for r in rest:
        p = r["report"]
        print(f"| {r.get('system', 'realtime-chat (PostgreSQL)')} | `{r['label']}` | {p['connections']} | "
              f"{fmt(p['requests_per_sec'], 0)} | {fmt(p['p50_ms'], 2)} | "
              f"{fmt(p['p99_ms'], 2)} | {p['non_2xx']} |")

seeds = {r["label"]: r["report"]["seconds"] for r in rows if r["scenario"] == "search_seed"}
found = [r for r in rows if r["scenario"] == "search"]
if found:
    print("### Scenario 7: search over 1,000,000 messages (wrk, 2 threads, 1 for one connection)\n")
    if seeds:
        print("Seeding (bulk SQL, index kept by the database): " +
              ", ".join(f"{k} {v} s" for k, v in seeds.items()) + "\n")
    print("| system | request | connections | requests/s | p50 ms | p99 ms | non-2xx | timeouts |")
    print("|---|---|---|---|---|---|---|---|")
    for r in found:
        p = r["report"]
        print(f"| {r['system']} | `{r['label']}` | {p['connections']} | "
              f"{fmt(p['requests_per_sec'], 0)} | {fmt(p['p50_ms'], 2)} | "
              f"{fmt(p['p99_ms'], 2)} | {p['non_2xx']} | {p.get('timeouts', 0)} |")
    print()
