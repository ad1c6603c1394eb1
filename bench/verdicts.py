"""The verdict rule of docs/results.md, one function for every claim.

A claim is judged by its parts. A part is a difference with a 95% interval
over seeds (paired by seed: `mixcal summary --vs`, or a stated per-seed
test) and the side of a threshold (0 unless said) the claim puts it on:

  * a part *holds* when its whole interval is on the claimed side;
  * a part is *contradicted* when its whole interval is on the other side;
  * otherwise (the interval straddles the threshold, or one seed gave no
    interval) it *decides nothing*.

A claim is **reproduced** when every part holds, **partly reproduced** when
at least one part holds and none is contradicted, **not reproduced**
otherwise (a point estimate in the claimed direction is not enough), and
**not tested** when this setting cannot test it (no parts, with the reason).
"""

import math

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_TESTED = "not tested"

# Two-sided 95% Student t quantiles by degrees of freedom.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365,
        8: 2.306, 9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def t95(dof):
    if dof in _T95:
        return _T95[dof]
    below = max(d for d in _T95 if d <= dof)
    return _T95[below]


class Part:
    """One part of a claim: `what` (words), an interval [low, high] around
    `mean`, and the side of `threshold` the claim says it is on ('<' or
    '>'). low/high None: no interval (one seed)."""

    def __init__(self, what, mean, low, high, side, threshold=0.0):
        assert side in ("<", ">")
        self.what, self.mean, self.low, self.high = what, mean, low, high
        self.side, self.threshold = side, threshold

    @staticmethod
    def from_vs(what, comparison, side, threshold=0.0):
        """From a SummaryRow stat's `vs` (a PairedComparison as JSON)."""
        c = comparison or {}
        low, high = c.get("low"), c.get("high")
        ok = all(isinstance(x, (int, float)) and math.isfinite(x) for x in (low, high))
        return Part(what, c.get("mean"), low if ok else None, high if ok else None,
                    side, threshold)

    @staticmethod
    def from_samples(what, values, side, threshold=0.0):
        """A Student-t interval of the mean of per-seed values (a stated
        test where no paired comparison exists, e.g. a gap per seed)."""
        vals = [v for v in values if v is not None and math.isfinite(v)]
        if not vals:
            return Part(what, None, None, None, side, threshold)
        mean = sum(vals) / len(vals)
        if len(vals) < 2:
            return Part(what, mean, None, None, side, threshold)
        var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)
        half = t95(len(vals) - 1) * math.sqrt(var / len(vals))
        return Part(what, mean, mean - half, mean + half, side, threshold)

    def holds(self):
        if self.low is None or self.high is None:
            return False
        return self.high < self.threshold if self.side == "<" else self.low > self.threshold

    def contradicted(self):
        if self.low is None or self.high is None:
            return False
        return self.low > self.threshold if self.side == "<" else self.high < self.threshold

    def state(self):
        if self.holds():
            return "holds"
        if self.contradicted():
            return "contradicted"
        return "undecided"

    def describe(self):
        claim = f"{self.side} {self.threshold:g}"
        if self.mean is None:
            return f"{self.what}: no numbers"
        if self.low is None:
            return f"{self.what} {self.mean:+.4f} (one seed, no interval; claimed {claim}): undecided"
        return (f"{self.what} {self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}] "
                f"(claimed {claim}): {self.state()}")


def judge(parts, not_tested_reason=None):
    """(verdict, explanation) for a claim's parts by the rule above."""
    if not_tested_reason is not None or not parts:
        return NOT_TESTED, not_tested_reason or "no part of it can be measured here"
    held = [p for p in parts if p.holds()]
    contra = [p for p in parts if p.contradicted()]
    if len(held) == len(parts):
        verdict = REPRODUCED
    elif held and not contra:
        verdict = PARTLY
    else:
        verdict = NOT_REPRODUCED
    return verdict, "; ".join(p.describe() for p in parts)
