#!/usr/bin/python3
"""The verdict rule (bench/verdicts.py) on synthetic per-seed numbers: a
claim whose means agree but whose interval includes 0 is not reproduced, a
single favourable point estimate is not partly, and a setting that cannot
test a claim says so."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import verdicts  # noqa: E402
from verdicts import Part, judge  # noqa: E402


def vs(mean, low, high):
    return {"mean": mean, "low": low, "high": high, "pairs": 3,
            "significant": low > 0 or high < 0}


class VerdictRuleTest(unittest.TestCase):
    def test_every_part_holding_is_reproduced(self):
        parts = [Part.from_vs("ECE", vs(-0.05, -0.07, -0.03), "<"),
                 Part.from_vs("OE", vs(-0.04, -0.06, -0.02), "<")]
        self.assertEqual(judge(parts)[0], verdicts.REPRODUCED)

    def test_means_in_the_claimed_direction_are_not_enough(self):
        # LS's ECE 0.0146 against mixup's 0.0108: worse on average, but the
        # paired interval includes 0.
        parts = [Part.from_vs("LS minus mixup, ECE", vs(0.0038, -0.0021, 0.0097), ">")]
        self.assertEqual(judge(parts)[0], verdicts.NOT_REPRODUCED)
        many = [Part.from_vs(f"setting {i}", vs(0.003, -0.002, 0.008), ">")
                for i in range(4)]
        self.assertEqual(judge(many)[0], verdicts.NOT_REPRODUCED)

    def test_one_part_holding_and_none_against_is_partly(self):
        parts = [Part.from_vs("a", vs(-0.05, -0.07, -0.03), "<"),
                 Part.from_vs("b", vs(-0.01, -0.03, 0.01), "<")]
        self.assertEqual(judge(parts)[0], verdicts.PARTLY)

    def test_a_contradicted_part_makes_it_not_reproduced(self):
        parts = [Part.from_vs("a", vs(-0.05, -0.07, -0.03), "<"),
                 Part.from_vs("b", vs(0.02, 0.01, 0.03), "<")]
        verdict, why = judge(parts)
        self.assertEqual(verdict, verdicts.NOT_REPRODUCED)
        self.assertIn("contradicted", why)

    def test_one_seed_decides_nothing(self):
        parts = [Part.from_vs("a", {"mean": -0.3, "pairs": 1}, "<")]
        verdict, why = judge(parts)
        self.assertEqual(verdict, verdicts.NOT_REPRODUCED)
        self.assertIn("one seed", why)

    def test_a_threshold_other_than_zero(self):
        # "No accuracy cost": the difference's lower end above -0.01.
        ok = Part.from_vs("accuracy", vs(0.002, -0.004, 0.008), ">", -0.01)
        self.assertTrue(ok.holds())
        cost = Part.from_vs("accuracy", vs(-0.03, -0.05, -0.02), ">", -0.01)
        self.assertTrue(cost.contradicted())

    def test_not_tested_says_why(self):
        verdict, why = judge([], "the temperature is fitted on noisy labels")
        self.assertEqual(verdict, verdicts.NOT_TESTED)
        self.assertIn("noisy labels", why)

    def test_per_seed_samples_give_a_student_t_interval(self):
        # Gaps of three seeds: mean 0.02, sample std 0.01, t(2) = 4.303.
        p = Part.from_samples("gap", [0.01, 0.02, 0.03], ">")
        self.assertAlmostEqual(p.mean, 0.02)
        half = 4.303 * 0.01 / 3 ** 0.5
        self.assertAlmostEqual(p.low, 0.02 - half)
        self.assertAlmostEqual(p.high, 0.02 + half)
        self.assertFalse(p.holds())  # the interval reaches below 0
        self.assertTrue(Part.from_samples("gap", [0.05, 0.06, 0.07], ">").holds())


if __name__ == "__main__":
    unittest.main()
