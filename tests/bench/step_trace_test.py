#!/usr/bin/env python3
"""bench/peer/step_trace.py on a made-up trace log in the engine's step-line format: the
generation steps by sequence count, the prompt steps with the gap before each, a log without
step lines refused.

    step_trace_test.py PATH/TO/step_trace.py
"""
import os
import subprocess
import sys
import tempfile
import unittest

STEP_TRACE = sys.argv.pop(1) if len(sys.argv) > 1 else "bench/peer/step_trace.py"


def step_line(t, generating, prompt, us):
    """One engine step line (batch_engine.cpp's trace format) ending at second `t` of 12:00."""
    ms = round(t * 1000)
    stamp = f"2026-12-07 12:00:{ms // 1000:02d}.{ms % 1000:03d}"
    return (f"{stamp} trace step: {generating} generating, 0 drafted, {prompt} prompt tokens "
            f"(mean position 0), 0 pads, {us} us (pacer: generation step 0 us, "
            f"prompt token 0 us)\n")


class StepTraceTest(unittest.TestCase):
    def run_on(self, lines):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "serve.log")
            with open(path, "w") as f:
                f.writelines(lines)
            return subprocess.run([sys.executable, STEP_TRACE, path], capture_output=True,
                                  text=True)

    def test_a_wave(self):
        # Three generation steps of 30 ms back to back, a 25 ms gap, a 600 ms prompt step,
        # then two generation steps of 4 and one of 3 (40 and 20 ms).
        lines = ["2026-12-07 12:00:00.000 info  unrelated line\n",
                 step_line(1.000, 4, 0, 30000), step_line(1.030, 4, 0, 30000),
                 step_line(1.060, 4, 0, 30000), step_line(1.685, 0, 544, 600000),
                 step_line(1.725, 4, 0, 40000), step_line(1.765, 4, 0, 40000),
                 step_line(1.785, 3, 0, 20000)]
        r = self.run_on(lines)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertRegex(out, r"\n\s+3\s+1\s+20\.00\n")      # one step of 3 sequences
        self.assertRegex(out, r"\n\s+4\s+5\s+30\.00\n")      # five of 4: median 30 ms
        self.assertIn("steps 7, wall 0.79 s", out)
        self.assertIn("decodes 0.76 s", out)  # the first step's own decode is before the wall
        self.assertRegex(out, r"\n\s+25\.0\s+0\s+544\s+0\s+600\.0\n")  # the prompt step

    def test_a_log_without_steps_is_refused(self):
        r = self.run_on(["2026-12-07 12:00:00.000 info  listening\n"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--log-level trace", r.stderr)


if __name__ == "__main__":
    unittest.main()
