#!/usr/bin/python3
"""Golden values for calib's metrics beyond top-label ECE, computed
independently with NumPy and scikit-learn (Debian's python3-numpy and
python3-sklearn), for tests/calib/golden_metrics_test.cc.

    /usr/bin/python3 tests/calib/golden_metrics.py OUT.txt

Writes a fixed random dataset (NumPy's RandomState(0)) and the metrics of
it, one "name values..." line each: the test reads the data, computes the
metrics with calib and compares.
"""
import sys

import numpy as np
from scipy.optimize import brentq
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

BINS = 15


def bin_index(c):
    """1-based equal-width bins, (lo, hi]; 0 goes to bin 1."""
    return np.clip(np.ceil(c * BINS), 1, BINS).astype(int)


def ece_of(scores, hits):
    b = bin_index(scores)
    total = 0.0
    for m in range(1, BINS + 1):
        sel = b == m
        if sel.any():
            total += sel.mean() * abs(hits[sel].mean() - scores[sel].mean())
    return total


def smooth_ece_at(conf, hits, s):
    """smECE_s by its definition: the reflected Gaussian kernel summed over
    its images (f + 2j and -f + 2j) at every example, on a grid of t fine
    against s, integrated by the trapezoid rule."""
    t = np.linspace(0.0, 1.0, int(max(2001, 40 / s)))
    resid = (hits - conf) / len(conf)
    h = np.zeros_like(t)
    reach = int(np.ceil((1 + 8 * s) / 2))
    for lo in range(0, len(t), 1000):
        part = t[lo:lo + 1000, None]
        for j in range(-reach, reach + 1):
            for image in (conf + 2 * j, -conf + 2 * j):
                d = (part - image[None, :]) / s
                h[lo:lo + 1000] += (np.exp(-0.5 * d * d) @ resid) / (s * np.sqrt(2 * np.pi))
    return np.trapz(np.abs(h), t)


def smooth_ece(conf, hits):
    """Blasiok & Nakkiran's smooth ECE: smECE at the width s* = smECE_{s*}."""
    width = np.exp(brentq(lambda u: smooth_ece_at(conf, hits, np.exp(u)) - np.exp(u),
                          np.log(1e-3), 0.0, xtol=1e-9))
    return smooth_ece_at(conf, hits, width), width


def main():
    rng = np.random.RandomState(0)
    n, k = 600, 5
    logits = rng.normal(scale=2.0, size=(n, k))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    # Labels from the probabilities, sharpened: an over-confident model's.
    y = np.array([rng.choice(k, p=np.sqrt(r) / np.sqrt(r).sum()) for r in p.astype(np.float64)])
    p64 = p.astype(np.float64)
    conf = p64.max(axis=1)
    pred = p64.argmax(axis=1)
    correct = (pred == y).astype(np.float64)

    classwise = np.mean([ece_of(p64[:, c], (y == c).astype(np.float64)) for c in range(k)])

    b = bin_index(conf)
    debiased, rel, res = 0.0, 0.0, 0.0
    acc = correct.mean()
    for m in range(1, BINS + 1):
        sel = b == m
        nb = sel.sum()
        if nb == 0:
            continue
        a, c = correct[sel].mean(), conf[sel].mean()
        term = (a - c) ** 2
        if nb >= 2:
            term -= a * (1 - a) / (nb - 1)
        debiased += nb / n * term
        rel += nb / n * (c - a) ** 2
        res += nb / n * (a - acc) ** 2
    debiased = np.sqrt(max(0.0, debiased))
    unc = acc * (1 - acc)

    order = np.argsort(-conf, kind="stable")
    risks = np.cumsum(1 - correct[order]) / np.arange(1, n + 1)
    aurc = risks.mean()

    # Thresholded adaptive ECE: per class, predictions above 0.01 sorted
    # (stable) and cut at floor(i n / R).
    tace_terms = []
    for cls in range(k):
        sel = p64[:, cls] > 0.01
        if not sel.any():
            continue
        pk, hk = p64[sel, cls], (y[sel] == cls).astype(np.float64)
        order_k = np.argsort(pk, kind="stable")
        pk, hk = pk[order_k], hk[order_k]
        m_k = len(pk)
        e = 0.0
        for r in range(BINS):
            lo, hi = (r * m_k) // BINS, ((r + 1) * m_k) // BINS
            if hi > lo:
                e += (hi - lo) / m_k * abs(hk[lo:hi].mean() - pk[lo:hi].mean())
        tace_terms.append(e)
    tace = np.mean(tace_terms)

    # MMCE by its O(N^2) definition.
    a = correct - conf
    kern = np.exp(-np.abs(conf[:, None] - conf[None, :]) / 0.4)
    mmce = np.sqrt(max(0.0, (a[:, None] * a[None, :] * kern).sum())) / n
    ece_point = ece_of(conf, correct)
    rmsce = np.sqrt(sum((b == m).mean() * (correct[b == m].mean() - conf[b == m].mean()) ** 2
                        for m in range(1, BINS + 1) if (b == m).any()))
    smece, smece_width = smooth_ece(conf, correct)
    # A calibrated model's confidences (hits drawn with them), where the
    # kernel is narrow.
    conf2 = rng.uniform(0.3, 1.0, size=1000).astype(np.float32)
    hits2 = (rng.uniform(size=1000) < conf2).astype(np.float64)
    smece2, smece2_width = smooth_ece(conf2.astype(np.float64), hits2)
    # The bootstrap interval's quantiles, with many resamples: another RNG
    # than calib's, so the test compares them within Monte Carlo error.
    boot = np.array([ece_of(conf[idx], correct[idx])
                     for idx in (rng.randint(0, n, size=n) for _ in range(4000))])
    boot_low, boot_high = np.quantile(boot, [0.025, 0.975])

    pos = rng.beta(5, 2, size=400).astype(np.float32)   # in-distribution confidences
    neg = rng.beta(2, 3, size=300).astype(np.float32)   # out-of-distribution
    pos_sorted = np.sort(pos.astype(np.float64))[::-1]
    threshold = pos_sorted[int(np.ceil(0.95 * len(pos))) - 1]
    fpr95 = (neg.astype(np.float64) >= threshold).mean()
    aupr = average_precision_score(
        np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg].astype(np.float64))

    # Calibrators: fitted on the first half (validation), applied to the
    # second (test).
    val, test = slice(0, n // 2), slice(n // 2, n)
    pv, yv, pt = p64[val], y[val], p64[test]
    hist = np.zeros_like(pt)
    iso = np.zeros_like(pt)
    for c in range(k):
        bv, bt = bin_index(pv[:, c]), bin_index(pt[:, c])
        values = np.array([((yv[bv == m] == c).mean() if (bv == m).any() else (m - 0.5) / BINS)
                           for m in range(1, BINS + 1)])
        hist[:, c] = values[bt - 1]
        ir = IsotonicRegression(out_of_bounds="clip").fit(pv[:, c], (yv == c).astype(float))
        iso[:, c] = ir.predict(pt[:, c])
    def renorm(q):
        s = q.sum(axis=1, keepdims=True)
        return np.where(s > 0, q / np.where(s > 0, s, 1), 1.0 / k)
    hist, iso = renorm(hist), renorm(iso)
    top_v = pv.max(axis=1)
    z = np.log(np.clip(top_v, 1e-7, 1 - 1e-7) / (1 - np.clip(top_v, 1e-7, 1 - 1e-7)))
    lr = LogisticRegression(C=1e12, tol=1e-12, max_iter=100000).fit(
        z.reshape(-1, 1), (pv.argmax(axis=1) == yv).astype(int))
    platt_a, platt_b = lr.coef_[0, 0], lr.intercept_[0]
    c = np.clip(top_v, 1e-7, 1 - 1e-7)
    beta_lr = LogisticRegression(C=1e12, tol=1e-12, max_iter=100000).fit(
        np.c_[np.log(c), -np.log(1 - c)], (pv.argmax(axis=1) == yv).astype(int))
    beta_a, beta_b = beta_lr.coef_[0]
    beta_m = beta_lr.intercept_[0]

    with open(sys.argv[1], "w") as f:
        f.write("hist_test " + " ".join("%.12g" % v for v in hist.ravel()) + "\n")
        f.write("iso_test " + " ".join("%.12g" % v for v in iso.ravel()) + "\n")
        f.write("platt_a %.12g\nplatt_b %.12g\n" % (platt_a, platt_b))
        f.write("beta_a %.12g\nbeta_b %.12g\nbeta_m %.12g\n" % (beta_a, beta_b, beta_m))
        f.write("n %d\nk %d\n" % (n, k))
        f.write("probs " + " ".join("%.9g" % v for v in p.ravel()) + "\n")
        f.write("labels " + " ".join(str(v) for v in y) + "\n")
        f.write("pos " + " ".join("%.9g" % v for v in pos) + "\n")
        f.write("conf2 " + " ".join("%.9g" % v for v in conf2) + "\n")
        f.write("hits2 " + " ".join("%d" % v for v in hits2) + "\n")
        f.write("neg " + " ".join("%.9g" % v for v in neg) + "\n")
        for name, v in [("classwise_ece", classwise), ("debiased_l2", debiased),
                        ("brier_reliability", rel), ("brier_resolution", res),
                        ("brier_uncertainty", unc), ("aurc", aurc), ("fpr95", fpr95),
                        ("aupr", aupr), ("mmce", mmce), ("ece", ece_point), ("tace", tace),
                        ("rmsce", rmsce), ("smece", smece), ("smece_width", smece_width),
                        ("smece2", smece2), ("smece2_width", smece2_width),
                        ("boot_low", boot_low), ("boot_high", boot_high)]:
            f.write("%s %.12g\n" % (name, v))


if __name__ == "__main__":
    main()
