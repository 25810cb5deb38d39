#!/usr/bin/env python3
"""bench/peer/summarize.py on a made-up compare.sh output folder: the throughput ratios, the
constraint's cost against the matched free run, and the interference table's long prompts
counted only while the measured streams ran.

    summarize_test.py PATH/TO/summarize.py
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
import unittest

SUMMARIZE = sys.argv.pop(1) if len(sys.argv) > 1 else "bench/peer/summarize.py"
CSV_FIELDS = ["index", "start_s", "end_s", "ttft_s", "error"]


def write_run(path, tps, ttft=0.1, itl50=0.02, itl99=0.05, started="2026-12-05T12:00:00Z",
              requests=()):
    """A `troupe bench` result folder: one point, and its per-request CSV."""
    os.makedirs(path)
    point = {"failed": 0, "errors": {}, "output_tokens_per_s": tps,
             "ttft_s": {"p50": ttft}, "itl_s": {"p50": itl50, "p99": itl99},
             "csv": "requests_0.csv"}
    with open(os.path.join(path, "results.json"), "w") as f:
        json.dump({"started_at": started, "points": [point]}, f)
    with open(os.path.join(path, "requests_0.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, CSV_FIELDS)
        w.writeheader()
        for i, (start, end, first) in enumerate(requests):
            w.writerow({"index": i, "start_s": start, "end_s": end, "ttft_s": first, "error": ""})


class Summarize(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def summarize(self, *folders):
        out = subprocess.run([sys.executable, SUMMARIZE, *folders], capture_output=True, text=True,
                             check=True).stdout
        with open(os.path.join(folders[0], "summary.json")) as f:
            return json.load(f), out

    def test_ratios_and_the_constraints_cost_per_round(self):
        # troupe / llama-server: 1.2 and 1.0 in two rounds; troupe's cost 10 % and 0 %.
        for r, (t, l, t_free, l_free) in enumerate([(120, 100, 133.33333, 150), (100, 100, 100, 200)]):
            base = os.path.join(self.dir, f"r{r + 1}")
            write_run(os.path.join(base, "troupe-c4"), t)
            write_run(os.path.join(base, "llama-c4"), l)
            write_run(os.path.join(base, "troupe-free-c4"), t_free)
            write_run(os.path.join(base, "llama-free-c4"), l_free)
        summary, out = self.summarize(self.dir)
        self.assertEqual(summary["4"]["rounds"], 2)
        self.assertAlmostEqual(summary["4"]["ratio_median"], 1.1)
        self.assertAlmostEqual(summary["4"]["ratio_min"], 1.0)
        cost = summary["constraint_cost_c4"]
        self.assertAlmostEqual(cost["troupe"]["cost_median"], 0.05, places=4)
        self.assertAlmostEqual(cost["llama"]["cost_median"], (1 / 3 + 0.5) / 2)
        self.assertIn("the constraint's cost", out)

    def test_troupe_alone_gives_the_cost_with_its_interval(self):
        # compare.sh --only troupe: no llama-server run, so no ratio; 7 rounds of costs 1..7 %
        # (out of order): median 4 %, and the order statistics' 95 % interval (1st to 7th).
        for r, pct in enumerate([3, 7, 1, 5, 2, 6, 4]):
            base = os.path.join(self.dir, f"r{r + 1}")
            write_run(os.path.join(base, "troupe-c4"), 100 - pct)
            write_run(os.path.join(base, "troupe-free-c4"), 100)
        summary, out = self.summarize(self.dir)
        self.assertNotIn("4", summary)
        cost = summary["constraint_cost_c4"]
        self.assertNotIn("llama", cost)
        self.assertEqual(cost["troupe"]["rounds"], 7)
        self.assertAlmostEqual(cost["troupe"]["cost_median"], 0.04)
        self.assertAlmostEqual(cost["troupe"]["cost_ci95"][0], 0.01)
        self.assertAlmostEqual(cost["troupe"]["cost_ci95"][1], 0.07)
        self.assertIn("| 4 | troupe | 7 |", out)

    def test_long_prompts_count_only_while_the_streams_ran(self):
        base = os.path.join(self.dir, "interference", "r1")
        for side, loaded_p99 in (("troupe", 0.06), ("llama", 1.2)):
            write_run(os.path.join(base, f"{side}-steady"), 100, itl99=0.04)
            # The streams start 3 s after the long client and run for 10 s (3 s to 13 s on the
            # long client's clock).
            write_run(os.path.join(base, f"{side}-loaded"), 100, itl99=loaded_p99,
                      started="2026-12-05T12:00:03Z", requests=[(0, 9.5, 0.5), (0.1, 10, 0.6)])
            write_run(os.path.join(base, f"{side}-long"), 10, ttft=9.9, started="2026-12-05T12:00:00Z",
                      requests=[(0, 2.5, 2.5),      # before the streams
                                (2.5, 5.0, 2.5),    # sent before them: not counted
                                (5.0, 6.0, 1.0),    # during
                                (6.0, 8.0, 2.0),    # during
                                (8.0, 12.5, 4.5),   # during
                                (12.5, 14.0, 1.5),  # answered after them
                                (14.0, 15.0, 1.0)])
        summary, _ = self.summarize(self.dir)
        troupe = summary["interference_troupe"]
        self.assertAlmostEqual(troupe["ratio_median"], 1.5)
        self.assertEqual(troupe["long_during_streams"], 3)
        self.assertAlmostEqual(troupe["long_during_streams_ttft_p50"], 2.0)
        self.assertAlmostEqual(troupe["long_ttft_p50"], 9.9)  # the long client's own figure
        self.assertAlmostEqual(summary["interference_llama"]["ratio_median"], 30.0)


if __name__ == "__main__":
    unittest.main()
