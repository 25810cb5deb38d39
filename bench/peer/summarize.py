#!/usr/bin/env python3
"""Summarises a bench/peer/compare.sh run (or several, pooled): per-round troupe/llama-server
ratios of output tokens/s, TTFT p50 and ITL p50 of both sides, and per concurrency the median
ratio over rounds with its range and, from 6 rounds on, a distribution-free 95 % interval for
the median (order statistics of the binomial). Writes summary.json into the first folder.

    bench/peer/summarize.py DIR [DIR...]
"""
import csv
import json
import math
import os
import re
import sys
from datetime import datetime


def point(path):
    with open(os.path.join(path, "results.json")) as f:
        p = json.load(f)["points"][0]
    if p["failed"]:
        raise SystemExit(f"{path}: {p['failed']} failed requests: {p['errors']}")
    return {"tps": p["output_tokens_per_s"], "ttft_p50": p["ttft_s"]["p50"],
            "itl_p50": p["itl_s"]["p50"], "itl_p99": p["itl_s"]["p99"]}


def median(xs):
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def median_interval(xs, level=0.95):
    """Order-statistic interval [x_(k), x_(n-k+1)] covering the median with >= level."""
    s, n = sorted(xs), len(xs)
    best = None
    for k in range(1, n // 2 + 1):
        cover = 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n
        if cover >= level:
            best = (s[k - 1], s[n - k], cover)
    return best


def batched_steps(folder):
    path = os.path.join(folder, "batched.jsonl")
    steps = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.startswith("{"):
                    b = json.loads(line)
                    steps[b["pl"]] = b["t_tg"] / b["tg"]
    return steps


def long_prompts_during(long, loaded):
    """TTFTs of the long client's requests sent and answered while the measured streams ran.
    Each client's request times count from its own start; the two starts are `started_at`
    apart (to the second: compare.sh starts the streams 3 s after the long client)."""
    def run(path):
        with open(os.path.join(path, "results.json")) as f:
            r = json.load(f)
        with open(os.path.join(path, os.path.basename(r["points"][0]["csv"]))) as f:
            rows = list(csv.DictReader(f))
        return datetime.fromisoformat(r["started_at"].replace("Z", "+00:00")), rows
    long_t0, long_rows = run(long)
    loaded_t0, loaded_rows = run(loaded)
    offset = (loaded_t0 - long_t0).total_seconds()
    end = max((float(x["end_s"]) for x in loaded_rows), default=0.0)
    return [float(x["ttft_s"]) for x in long_rows
            if not x["error"] and float(x["start_s"]) >= offset and float(x["end_s"]) <= offset + end]


def round_points(folders, pattern):
    """(folder, round dir, concurrency) of each troupe run whose name fullmatches pattern
    (its one group: the concurrency), rounds in order."""
    for folder in folders:
        for rdir in sorted(d for d in os.listdir(folder) if re.fullmatch(r"r\d+", d)):
            for name in os.listdir(os.path.join(folder, rdir)):
                m = re.fullmatch(pattern, name)
                if m:
                    yield folder, rdir, int(m.group(1))


def ran(path):
    return os.path.exists(os.path.join(path, "results.json"))


def constraint_costs(folders):
    """concurrency -> per round {side: (constrained tok/s, free tok/s)}, where free runs exist
    (llama-server's only where it ran: compare.sh --only troupe runs troupe alone)."""
    costs = {}
    for folder, rdir, c in round_points(folders, r"troupe-free-c(\d+)"):
        base = os.path.join(folder, rdir)
        costs.setdefault(c, []).append(
            {side: (point(os.path.join(base, f"{side}-c{c}"))["tps"],
                    point(os.path.join(base, f"{side}-free-c{c}"))["tps"])
             for side in ("troupe", "llama") if ran(os.path.join(base, f"{side}-free-c{c}"))})
    return costs


def main(folders):
    rows = {}  # concurrency -> list of (round label, troupe, llama)
    for folder, rdir, c in round_points(folders, r"troupe-c(\d+)"):
        if not ran(os.path.join(folder, rdir, f"llama-c{c}")):
            continue  # troupe alone (--only troupe): no ratio
        t = point(os.path.join(folder, rdir, f"troupe-c{c}"))
        l = point(os.path.join(folder, rdir, f"llama-c{c}"))
        rows.setdefault(c, []).append((f"{os.path.basename(folder)}/{rdir}", t, l))
    steps = batched_steps(folders[0])
    summary = {}
    if rows:
        print("\nper round: troupe / llama-server output tok/s; TTFT p50 and ITL p50 in ms (troupe | llama)")
        for c in sorted(rows):
            for label, t, l in rows[c]:
                print(f"  {c:>3} streams {label:<28} {t['tps']:8.1f} / {l['tps']:8.1f} = {t['tps'] / l['tps']:.3f}"
                      f"   TTFT {t['ttft_p50'] * 1e3:7.0f} | {l['ttft_p50'] * 1e3:7.0f}"
                      f"   ITL {t['itl_p50'] * 1e3:6.1f} | {l['itl_p50'] * 1e3:6.1f}")
        print("\npooled over rounds (median; range; 95 % interval of the median where 6+ rounds)")
        print("| streams | rounds | troupe tok/s | llama-server tok/s | ratio median | range | 95 % interval |"
              " TTFT p50 ms troupe / llama | ITL p50 ms troupe / llama | ITL p99 ms troupe / llama |"
              " batched-bench step ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for c in sorted(rows):
            ratios = [t["tps"] / l["tps"] for _, t, l in rows[c]]
            ci = median_interval(ratios)
            med = lambda side, key: median([(t if side == "t" else l)[key] for _, t, l in rows[c]])
            step = steps.get(c)
            summary[c] = {"rounds": len(ratios), "ratio_median": median(ratios), "ratio_min": min(ratios),
                          "ratio_max": max(ratios), "ratio_ci95": ci[:2] if ci else None,
                          "troupe_tps": med("t", "tps"), "llama_tps": med("l", "tps"),
                          "troupe_ttft_p50": med("t", "ttft_p50"), "llama_ttft_p50": med("l", "ttft_p50"),
                          "troupe_itl_p50": med("t", "itl_p50"), "llama_itl_p50": med("l", "itl_p50"),
                          "troupe_itl_p99": med("t", "itl_p99"), "llama_itl_p99": med("l", "itl_p99"),
                          "batched_step": step}
            s = summary[c]
            print(f"| {c} | {len(ratios)} | {s['troupe_tps']:.1f} | {s['llama_tps']:.1f} | {s['ratio_median']:.3f} |"
                  f" {s['ratio_min']:.3f}-{s['ratio_max']:.3f} |"
                  f" {f'{ci[0]:.3f}-{ci[1]:.3f}' if ci else '-'} |"
                  f" {s['troupe_ttft_p50'] * 1e3:.0f} / {s['llama_ttft_p50'] * 1e3:.0f} |"
                  f" {s['troupe_itl_p50'] * 1e3:.1f} / {s['llama_itl_p50'] * 1e3:.1f} |"
                  f" {s['troupe_itl_p99'] * 1e3:.1f} / {s['llama_itl_p99'] * 1e3:.1f} |"
                  f" {f'{step * 1e3:.1f}' if step else '-'} |")
    interference = {}
    for folder in folders:
        base = os.path.join(folder, "interference")
        if not os.path.isdir(base):
            continue
        for rdir in sorted(os.listdir(base)):
            for side in ("troupe", "llama"):
                steady = os.path.join(base, rdir, f"{side}-steady")
                loaded = os.path.join(base, rdir, f"{side}-loaded")
                long = os.path.join(base, rdir, f"{side}-long")
                if os.path.exists(os.path.join(loaded, "results.json")):
                    has_long = os.path.exists(os.path.join(long, "results.json"))
                    long_ttft = point(long)["ttft_p50"] if has_long else float("nan")
                    during = long_prompts_during(long, loaded) if has_long else []
                    interference.setdefault(side, []).append(
                        (point(steady)["itl_p99"], point(loaded)["itl_p99"], long_ttft, during))
    if interference:
        print("\nrunning streams' ITL p99 (4 x D(128,256)) alone and while 1,024-token prompts arrive")
        print("| server | rounds | steady ms | with 1k prompts ms | ratio median (range) |"
              " 1k prompts' TTFT p50 ms | 1k prompts sent and answered while the streams ran:"
              " count, TTFT p50 ms |")
        print("|---|---|---|---|---|---|---|")
        for side, rows in interference.items():
            ratios = [r[1] / r[0] for r in rows]
            steady, loaded = median([r[0] for r in rows]), median([r[1] for r in rows])
            long_ttft = median([r[2] for r in rows])
            during = [t for r in rows for t in r[3]]
            during_p50 = median(during) if during else float("nan")
            summary[f"interference_{side}"] = {"steady_itl_p99": steady, "loaded_itl_p99": loaded,
                                               "ratio_median": median(ratios),
                                               "long_ttft_p50": long_ttft,
                                               "long_during_streams": len(during),
                                               "long_during_streams_ttft_p50": during_p50}
            print(f"| {'troupe' if side == 'troupe' else 'llama-server'} | {len(rows)} |"
                  f" {steady * 1e3:.1f} | {loaded * 1e3:.1f} |"
                  f" {median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) | {long_ttft * 1e3:.0f} |"
                  f" {len(during)}, {during_p50 * 1e3:.0f} |")
    costs = constraint_costs(folders)
    if costs:
        print("\nthe constraint's cost: 1 - constrained / free output tok/s, the free run with the"
              " constrained answers' lengths (compare.sh --free-matched); median over rounds (range;"
              " 95 % interval of the median where 6+ rounds)")
        print("| streams | side | rounds | constrained / free tok/s | cost median | range | 95 % interval |")
        print("|---|---|---|---|---|---|---|")
        for c in sorted(costs):
            entry = {}
            for side in ("troupe", "llama"):
                rounds = [r[side] for r in costs[c] if side in r]
                if not rounds:
                    continue
                cost = [1 - con / free for con, free in rounds]
                con, free = median([r[0] for r in rounds]), median([r[1] for r in rounds])
                ci = median_interval(cost)
                entry[side] = {"rounds": len(rounds), "constrained_tps": con, "free_tps": free,
                               "cost_median": median(cost), "cost_min": min(cost),
                               "cost_max": max(cost), "cost_ci95": ci[:2] if ci else None}
                print(f"| {c} | {'troupe' if side == 'troupe' else 'llama-server'} | {len(rounds)} |"
                      f" {con:.1f} / {free:.1f} | {median(cost) * 100:.1f} % |"
                      f" {min(cost) * 100:.1f} to {max(cost) * 100:.1f} % |"
                      f" {f'{ci[0] * 100:.1f} to {ci[1] * 100:.1f} %' if ci else '-'} |")
            entry["rounds"] = len(costs[c])
            summary[f"constraint_cost_c{c}"] = entry
    with open(os.path.join(folders[0], "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
