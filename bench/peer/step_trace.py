#!/usr/bin/env python3
"""Reads the engine's step lines from a `troupe serve --log-level trace` log and prints where a
run's time went: the generation-only step by sequence count, every step that carried prompt
tokens (with the gap before it: the time the engine spent between the previous step's end and
this one's start), and the sum of the decodes against the wall time, so that what a comparison
with llama-server shows can be read step by step.

    troupe serve -m MODEL ... --log-level trace 2>&1 | tee serve.log   # then run a client
    bench/peer/step_trace.py serve.log [--prompt-steps 20]
"""
import argparse
import re
import statistics
from datetime import datetime

STEP = re.compile(
    r"^(\S+ \S+) trace step: (\d+) generating, (\d+) drafted, (\d+) prompt tokens .*?, "
    r"(\d+) pads, (\d+) us")


def read_steps(path):
    """(end time s, generating, drafted, prompt tokens, pads, decode us) per step line."""
    steps = []
    with open(path, errors="replace") as f:
        for line in f:
            m = STEP.match(line)
            if not m:
                continue
            end = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            steps.append((end, *(int(m.group(i)) for i in range(2, 7))))
    return steps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("log")
    p.add_argument("--prompt-steps", type=int, default=20,
                   help="how many steps with prompt tokens to list (default 20)")
    args = p.parse_args()
    steps = read_steps(args.log)
    if len(steps) < 2:
        raise SystemExit(f"step_trace: fewer than two step lines in {args.log} "
                         "(was the server run with --log-level trace?)")
    gen = {}
    for _, g, _, prompt, _, us in steps:
        if prompt == 0 and g > 0:
            gen.setdefault(g, []).append(us)
    print("generation-only steps: sequences, steps, median ms")
    for g in sorted(gen):
        print(f"  {g:3d} {len(gen[g]):6d} {statistics.median(gen[g]) / 1000:9.2f}")
    # A step's line is written when its decode ends: the gap before step i is what the engine
    # did between the end of step i-1 and the start of step i (sampling, sending, admitting,
    # host-cache copies, or waiting for work). The log's times are to the millisecond, so one
    # gap is good to about a millisecond; their median over many steps is the figure to read.
    gaps = [(steps[i][0] - steps[i - 1][0]) * 1e6 - steps[i][5] for i in range(1, len(steps))]
    wall = steps[-1][0] - steps[0][0]
    decode = sum(s[5] for s in steps[1:]) / 1e6
    print(f"steps {len(steps)}, wall {wall:.2f} s (first to last step's end), "
          f"decodes {decode:.2f} s, gap between steps median {max(statistics.median(gaps), 0.0) / 1000:.2f} ms")
    shown = 0
    print("steps with prompt tokens: gap before ms, generating, prompt tokens, pads, decode ms")
    for i in range(1, len(steps)):
        _, g, drafted, prompt, pads, us = steps[i]
        if prompt == 0:
            continue
        if shown == args.prompt_steps:
            print("  ...")
            break
        print(f"  {gaps[i - 1] / 1000:9.1f} {g:4d} {prompt:6d} {pads:4d} {us / 1000:9.1f}")
        shown += 1


if __name__ == "__main__":
    main()
