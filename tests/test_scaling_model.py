#!/usr/bin/env python3
"""bench/scaling_model.py on tests/fixtures/scaling/inputs.json (made-up
numbers): values worked out by hand, the monotonic properties any ring
model has, and its command line.
usage: test_scaling_model.py REPO_ROOT"""
import importlib.util
import json
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # run from the source tree: leave no cache there

ROOT = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
SCRIPT = os.path.join(ROOT, "bench", "scaling_model.py")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "scaling", "inputs.json")
spec = importlib.util.spec_from_file_location("scaling_model", SCRIPT)
sm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sm)

with open(FIXTURE) as f:
    INPUTS = json.load(f)
TOY = INPUTS["profiles"][0]  # forward 10, backward 20, optimizer 5 ms: 35 ms on one host


def buckets(kb):
    return sm.layout(TOY, kb)["buckets"]


class ByHand(unittest.TestCase):
    def test_one_bucket_four_hosts_10_gbits(self):
        # 4 MB ready at the end of backward, nothing to overlap with:
        # 2 x 3/4 x 4e6 B / 1.25e9 B/s = 4.8 ms, plus 2 x 3 hops x 25 us = 0.15 ms.
        self.assertAlmostEqual(sm.ring_ms(4e6, 4, 0.025, sm.link_bytes_per_ms(10)), 4.95)
        step, eff = sm.predict(TOY, buckets(25600), [4], [10], 25)[(4, 10)]
        self.assertAlmostEqual(step, 10 + 20 + 4.95 + 5)
        self.assertAlmostEqual(eff, 35 / 39.95)

    def test_first_bucket_overlaps_backward(self):
        # 1 MB ready at 5 ms: 1.2 + 0.15 ms, done at 6.35, hidden; 3 MB at 20 ms: 3.6 + 0.15.
        step, _ = sm.predict(TOY, buckets(1024), [4], [10], 25)[(4, 10)]
        self.assertAlmostEqual(step, 10 + 20 + 3.75 + 5)

    def test_everything_hidden(self):
        # Both ready early: the second waits for the first (6.35 ms) and ends at 10.1 < 20.
        step, eff = sm.predict(TOY, buckets(512), [4], [10], 25)[(4, 10)]
        self.assertAlmostEqual(step, 35)
        self.assertAlmostEqual(eff, 1)

    def test_buckets_queue_on_the_link_in_launch_order(self):
        cost = lambda nbytes: nbytes / 1e5  # 10 ms per MB
        self.assertAlmostEqual(sm.overlapped_end([{"bytes": 1e6, "ms_ready": 5}, {"bytes": 3e6, "ms_ready": 6}], cost), 45)
        # A later bucket ready earlier still launches after the one before it.
        one = lambda nbytes: 1.0
        self.assertAlmostEqual(sm.overlapped_end([{"bytes": 1, "ms_ready": 10}, {"bytes": 1, "ms_ready": 2}], one), 12)

    def test_one_host_needs_no_sync(self):
        self.assertEqual(sm.ring_ms(4e6, 1, 0.025, 1.0), 0.0)

    def test_check_against_two_processes(self):
        rows = {r["way"]: r for r in sm.check_two(INPUTS["profiles"], INPUTS)}
        # Batch-50 profile, 20 ms without sync; the window after backward: 0.1 + 0.2 x 4 MB.
        self.assertAlmostEqual(rows["shared-memory window"]["predicted_ms"], 20.9)
        self.assertEqual(rows["shared-memory window"]["measured_ms"], 21.5)
        self.assertAlmostEqual(rows["shared-memory window"]["predicted_added_ms"], 0.9)
        self.assertAlmostEqual(rows["shared-memory window"]["measured_added_ms"], 1.0)
        self.assertAlmostEqual(rows["gradients kept local"]["predicted_ms"], 20)
        # One bucket ready at the end of backward: 0.05 + 0.3 x 4 MB.
        self.assertAlmostEqual(rows["all-reduce buckets, shared memory"]["predicted_ms"], 21.25)
        self.assertNotIn("all-reduce buckets, TCP on loopback", rows)


class Monotonic(unittest.TestCase):
    hosts = [2, 4, 8, 16, 32, 64]
    gbits = [10, 25, 100]

    def test_more_hosts_never_faster_faster_links_never_slower(self):
        for kb in (25600, 1024, 512):
            pred = sm.predict(TOY, buckets(kb), self.hosts, self.gbits, 25)
            for g in self.gbits:
                steps = [pred[(n, g)][0] for n in self.hosts]
                self.assertEqual(steps, sorted(steps), (kb, g))
            for n in self.hosts:
                steps = [pred[(n, g)][0] for g in self.gbits]
                self.assertEqual(steps, sorted(steps, reverse=True), (kb, n))
            for (n, g), (step, eff) in pred.items():
                self.assertGreaterEqual(step, 35 - 1e-9)
                self.assertLessEqual(eff, 1 + 1e-12)
                self.assertGreater(eff, 0)

    def test_latency_costs_time(self):
        low = sm.predict(TOY, buckets(25600), [64], [100], 5)[(64, 100)][0]
        high = sm.predict(TOY, buckets(25600), [64], [100], 50)[(64, 100)][0]
        self.assertAlmostEqual(high - low, 2 * 63 * 0.045)


class CommandLine(unittest.TestCase):
    def run_model(self, *args):
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)

    def test_json(self):
        r = self.run_model(FIXTURE, "--json", "--hosts", "4", "--gbits", "10")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        (p,) = out["predictions"]  # the batch-50 profile is only for the check
        self.assertEqual((p["hosts"], p["gbits"]), (4, 10))
        self.assertAlmostEqual(p["ms_per_step"], 39.95)

    def test_markdown_prints_inputs_beside_outputs(self):
        r = self.run_model(FIXTURE, "--hosts", "4", "--gbits", "10", "--bucket-kb", "1024")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("| Toy net | 100 images | 4.00 MB | 10.00 ms | 20.00 ms | 5.00 ms | 35.00 ms | "
                      "1.00 MB @ 5.0, 3.00 MB @ 20.0 |", r.stdout)
        self.assertIn("alpha 25 us per hop", r.stdout)
        self.assertIn("| shared-memory window | 20.90 | 21.50 | 0.90 | 1.00 |", r.stdout)
        self.assertIn("| Toy net | 10 Gbit/s | 38.8, 0.90 |", r.stdout)

    def test_bad_input_is_a_clear_error(self):
        r = self.run_model(FIXTURE, "--bucket-kb", "7")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("measured with buckets of [25600, 1024, 512] KB, not 7", r.stderr)
        r = self.run_model(os.path.join(ROOT, "no-such-file.json"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot read", r.stderr)
        r = self.run_model(FIXTURE, "--hosts", "0")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("needs positive values", r.stderr)
        r = self.run_model(FIXTURE, "--alpha-us", "-1")
        self.assertIn("--alpha-us must be >= 0, got -1.0", r.stderr)
        broken = json.loads(json.dumps(INPUTS))
        del broken["profiles"][0]["layouts"]
        r = subprocess.run([sys.executable, SCRIPT, "/dev/stdin"], input=json.dumps(broken), capture_output=True,
                           text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is not what bench/scaling writes (KeyError: 'layouts')", r.stderr)


if __name__ == "__main__":
    unittest.main()
