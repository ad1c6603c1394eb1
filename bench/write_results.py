#!/usr/bin/python3
"""Writes docs/results.md and docs/results/*.svg from the sweeps that
bench/reproduce.sh ran.

Every number comes from `mixcal summary SWEEP --vs baseline --format json`
(the coordinator's SummarizeSweep: mean, std and the paired comparison with
its 95% Student-t interval over seeds, computed in the store) and every
figure from `mixcal plot`. The verdicts follow the rules written next to
each claim in the output, applied to those numbers; nothing is typed in by
hand.

    /usr/bin/python3 bench/write_results.py --work mixcal-work/reproduce \
        --out docs --mixcal build/client/mixcal
"""

import argparse
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verdicts import Part, judge  # noqa: E402


def load(path):
    with open(path) as f:
        return json.load(f)


class Sweep:
    """One sweep's summary rows, indexed by (method, value, split)."""

    def __init__(self, name, sweep_id, spec_file, work):
        self.name, self.id, self.spec_file = name, sweep_id, spec_file
        self.spec = load(os.path.join(work, f"spec-{name}.json"))
        self.rows = {}
        for r in load(os.path.join(work, f"summary-{sweep_id}.json")):
            key = (r["method"], float(r.get("value", 0)), r["split"])
            self.rows[key] = r
        self.jobs = load(os.path.join(work, f"jobs-{sweep_id}.json"))

    def stat(self, method, value, split, metric):
        r = self.rows.get((method, float(value), split))
        if r is None:
            return None
        for s in r.get("stats", []):
            if s["metric"] == metric:
                return s
        return None

    def mean(self, method, value, split, metric):
        s = self.stat(method, value, split, metric)
        return None if s is None else s["mean"]

    def vs(self, method, value, split, metric):
        s = self.stat(method, value, split, metric)
        return None if s is None else s.get("vs")

    def seeds(self):
        return len(self.spec.get("seeds", [0]))

    def configs(self):
        out = []
        for m in self.spec["methods"]:
            vals = m.get("values") or [0]
            out += [(m["name"], float(v)) for v in vals]
        return out

    def job(self, method, value, seed=0):
        for j in self.jobs:
            if (j["method"] == method and abs(float(j.get("value", 0)) - value) < 1e-9
                    and int(j.get("seed", 0)) == seed):
                return j["id"]
        return None

    def job_seconds(self):
        """Sum of the jobs' run times (start to finish of the last attempt)."""
        total = 0.0
        for j in self.jobs:
            a, b = int(j.get("started_at_us", 0)), int(j.get("finished_at_us", 0))
            if a and b > a:
                total += (b - a) / 1e6
        return total

    def states(self):
        counts = {}
        for j in self.jobs:
            counts[j["state"]] = counts.get(j["state"], 0) + 1
        return counts


def fmt(v, digits=4):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def ms(sweep, method, value, split, metric):
    s = sweep.stat(method, value, split, metric)
    if s is None:
        return "–"
    return f"{s['mean']:.4f} ± {s.get('std', 0):.4f}"


def ci(c, digits=4):
    """'−0.0812 [−0.0950, −0.0674] *' from a PairedComparison."""
    if not c:
        return "–"
    mean = c.get("mean", 0)
    low, high = c.get("low"), c.get("high")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return f"{mean:+.{digits}f} (one seed)"
    star = " *" if c.get("significant") else ""
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]{star}"



_vs_cache = {}


def summary_vs(mixcal, sweep_id, ref, split):
    """(method, value) -> {metric: stat} of `mixcal summary --vs ref` on
    `split` at the final epoch: paired differences against any reference."""
    key = (sweep_id, ref, split)
    if key not in _vs_cache:
        r = subprocess.run([mixcal, "summary", str(sweep_id), "--vs", ref, "--split", split,
                            "--format", "json"], capture_output=True, text=True)
        out = {}
        if r.returncode == 0:
            for row in json.loads(r.stdout):
                if row.get("ensemble"):
                    continue
                out[(row["method"], float(row.get("value", 0)))] = {
                    x["metric"]: x for x in row.get("stats", [])}
        _vs_cache[key] = out
    return _vs_cache[key]


def vs_of(mixcal, sweep_id, ref, split, method, value, metric):
    return (summary_vs(mixcal, sweep_id, ref, split).get((method, float(value)), {})
            .get(metric, {}).get("vs"))


_seed_cache = {}


def per_seed(mixcal, sweep_id, split):
    """(method, value) -> {seed: {epoch: row}} from `mixcal metrics`."""
    key = (sweep_id, split)
    if key not in _seed_cache:
        r = subprocess.run([mixcal, "metrics", str(sweep_id), "--split", split, "--format",
                            "json"], capture_output=True, text=True)
        out = {}
        if r.returncode == 0:
            for row in json.loads(r.stdout):
                k = (row["method"], float(row.get("value", 0)))
                out.setdefault(k, {}).setdefault(int(row.get("seed", 0)), {})[
                    int(row["epoch"])] = row
        _seed_cache[key] = out
    return _seed_cache[key]


def best_alpha(s, method="mixup"):
    """The α with the lowest *validation* ECE (split val), and where it was
    chosen; test ECE only when the sweep has no validation split."""
    alphas = sorted(v for m, v in s.configs() if m == method)
    on_val = [(a, s.mean(method, a, "val", "ece")) for a in alphas]
    on_val = [(a, e) for a, e in on_val if e is not None]
    if on_val:
        return min(on_val, key=lambda t: t[1])[0], "validation"
    on_test = [(a, s.mean(method, a, "test", "ece")) for a in alphas]
    on_test = [(a, e) for a, e in on_test if e is not None]
    if on_test:
        return min(on_test, key=lambda t: t[1])[0], "test (no validation split stored)"
    return None, None

def label(method, value):
    return "baseline" if method == "baseline" else f"{method} {value:g}"


class Doc:
    def __init__(self, out_dir, mixcal):
        self.out_dir, self.mixcal = out_dir, mixcal
        self.lines = []
        self.verdicts = []

    def add(self, *lines):
        self.lines.extend(lines)

    def plot(self, name, *args):
        path = os.path.join(self.out_dir, "results", name)
        cmd = [self.mixcal, "plot", *args, "--out", path]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            self.add(f"*(figure {name} could not be drawn: {r.stderr.strip()})*", "")
            return
        shown = " ".join(["mixcal", "plot", *args])
        self.add(f"![{name}](results/{name})", "", f"<sub>`{shown}`</sub>", "")

    def table(self, header, rows):
        self.add("| " + " | ".join(header) + " |",
                 "|" + "|".join("---" for _ in header) + "|")
        for r in rows:
            self.add("| " + " | ".join(r) + " |")
        self.add("")

    def verdict(self, claim, verdict, why):
        self.verdicts.append((claim, verdict, why))
        self.add(f"**Verdict: {verdict}.** {why}", "")

    def judged(self, claim, parts, context="", not_tested=None):
        """A claim judged by its parts (bench/verdicts.py's rule)."""
        verdict, why = judge(parts, not_tested)
        self.verdict(claim, verdict, (context + " " if context else "") + why + ".")


def thulasidasan(doc, s, mixcal):
    doc.add("## 1. Mixup calibrates an overconfident network (Thulasidasan et al. 2019)", "",
            "*On Mixup Training: Improved Calibration and Predictive Uncertainty for Deep "
            "Neural Networks*, NeurIPS 2019. Claims: with an overconfident baseline, mixup "
            "lowers ECE and overconfidence error (OE) by a large factor at no loss of "
            "accuracy; ECE against α is U-shaped (too much mixing turns underconfident); "
            "label smoothing and ERL remove overconfidence less well or overshoot; "
            "mixing features only (labels not mixed) keeps little of the benefit; "
            "mixup-trained networks are less confident on random noise.", "",
            f"Setting (`{s.spec_file}`, sweep {s.id}): LeNet on 3,000 Fashion-MNIST "
            "training images (test: 5,000), 30 epochs, SGD lr 0.05 momentum 0.9, cosine "
            "schedule, no weight decay — a network that fits its training labels. "
            f"{len(s.configs())} configurations × {s.seeds()} seeds = {len(s.jobs)} jobs; "
            "metrics at the final epoch; test split (TS: after temperature scaling on the "
            "held-out 10%).", "",
            "```", f"mixcal submit {s.spec_file} --wait", f"mixcal summary {s.id} --vs baseline",
            "```", "")
    rows = []
    for m, v in s.configs():
        rows.append([label(m, v), ms(s, m, v, "test", "accuracy"), ms(s, m, v, "test", "ece"),
                     ms(s, m, v, "test", "oe"),
                     fmt(s.mean(m, v, "test", "mean_confidence")),
                     ms(s, m, v, "test_ts", "ece"),
                     fmt(s.mean(m, v, "noise", "mean_confidence")),
                     fmt(s.mean(m, v, "noise", "auroc"))])
    doc.add("Mean ± std over seeds:", "")
    doc.table(["method", "accuracy", "ECE", "OE", "confidence", "ECE (TS)",
               "noise confidence", "noise AUROC"], rows)
    rows = []
    for m, v in s.configs():
        if m == "baseline":
            continue
        rows.append([label(m, v), ci(s.vs(m, v, "test", "accuracy")),
                     ci(s.vs(m, v, "test", "ece")), ci(s.vs(m, v, "test", "oe")),
                     ci(s.vs(m, v, "noise", "mean_confidence"))])
    doc.add("Difference to the baseline, paired by seed: mean [95% CI, Student t]; "
            "* = the interval excludes 0:", "")
    doc.table(["method", "accuracy", "ECE", "OE", "noise confidence"], rows)
    doc.plot("thulasidasan-ece-vs-alpha.svg", "sweep", s.id, "--metric", "ece",
             "--param", "alpha")
    doc.plot("thulasidasan-oe-difference-vs-alpha.svg", "sweep", s.id, "--metric", "oe",
             "--param", "alpha", "--vs", "baseline")
    doc.plot("thulasidasan-ece-by-epoch.svg", "curves", s.id, "--metric", "ece")
    base, mix = s.job("baseline", 0), s.job("mixup", 0.4)
    if base and mix:
        doc.plot("thulasidasan-reliability-baseline.svg", "reliability", base)
        doc.plot("thulasidasan-reliability-mixup0.4.svg", "reliability", mix)
    doc.plot("thulasidasan-noise-confidence-vs-alpha.svg", "sweep", s.id, "--metric",
             "mean_confidence", "--split", "noise", "--param", "alpha")

    # --- verdicts, by the one rule (bench/verdicts.py) ---
    b_ece, b_oe = s.mean("baseline", 0, "test", "ece"), s.mean("baseline", 0, "test", "oe")
    alphas = sorted(v for m, v in s.configs() if m == "mixup")
    a_star, chosen_on = best_alpha(s)
    doc.add(f"Mixup's α for the comparisons below: {a_star:g}, the lowest ECE on the "
            f"{chosen_on} split (`val`, 10% of the training images held out), not on test "
            "data. Each part is a paired difference over seeds with its 95% interval.", "")
    over = b_ece is not None and b_ece >= 0.05 and b_oe >= 0.5 * b_ece
    claim = "Mixup lowers ECE and OE of an overconfident baseline at no accuracy cost"
    if not over or a_star is None:
        doc.judged(claim, [], not_tested=(f"the baseline is not overconfident here (ECE {fmt(b_ece)}, "
                                          f"OE {fmt(b_oe)}; the rule needs ECE ≥ 0.05 and OE ≥ ½·ECE)"))
    else:
        doc.judged(claim, [
            Part.from_vs(f"ECE, mixup α={a_star:g} − baseline", s.vs("mixup", a_star, "test", "ece"), "<"),
            Part.from_vs(f"OE, mixup α={a_star:g} − baseline", s.vs("mixup", a_star, "test", "oe"), "<"),
            Part.from_vs("accuracy, mixup − baseline (no cost: above −0.01)",
                         s.vs("mixup", a_star, "test", "accuracy"), ">", -0.01)],
            f"Baseline ECE {b_ece:.4f}, OE {b_oe:.4f} (overconfident); mixup α={a_star:g} ECE "
            f"{fmt(s.mean('mixup', a_star, 'test', 'ece'))}.")
    # After temperature scaling: the headline's comparison, whatever it shows.
    if a_star is not None:
        d_ts = s.vs("mixup", a_star, "test_ts", "ece")
        doc.add(f"After temperature scaling (fitted on the validation split), mixup α={a_star:g} "
                f"against the baseline: ECE {ms(s, 'mixup', a_star, 'test_ts', 'ece')} against "
                f"{ms(s, 'baseline', 0, 'test_ts', 'ece')}, difference {ci(d_ts)}"
                + (" — temperature scaling alone closes the gap." if not (d_ts or {}).get("significant")
                   else "."), "")
        doc.judged("Mixup's ECE advantage remains after temperature scaling (a finding, not a "
                   "paper's claim)",
                   [Part.from_vs(f"ECE after TS, mixup α={a_star:g} − baseline", d_ts, "<")])

    # U shape: both ends of the α grid minus the best α (paired by seed).
    claim = "ECE against α is U-shaped (both ends worse than the best α)"
    if a_star is not None and len(alphas) >= 3:
        ref = f"mixup:{a_star:g}"
        lo, hi = alphas[0], alphas[-1]
        gap_top = (s.mean("mixup", hi, "test", "mean_confidence") or 0) - \
            (s.mean("mixup", hi, "test", "accuracy") or 0)
        context = ("ECE by α: " + ", ".join(f"{a:g}: {fmt(s.mean('mixup', a, 'test', 'ece'))}"
                                          for a in alphas)
                   + f"; at α={hi:g} confidence − accuracy = {gap_top:+.4f}"
                   + (" (underconfident)." if gap_top < 0 else "."))
        if a_star in (lo, hi):
            doc.judged(claim, [Part("the best α on validation is an end of the grid", None,
                                    None, None, ">")], context)
        else:
            doc.judged(claim, [
                Part.from_vs(f"ECE, α={lo:g} − α={a_star:g}",
                             vs_of(mixcal, s.id, ref, "test", "mixup", lo, "ece"), ">"),
                Part.from_vs(f"ECE, α={hi:g} − α={a_star:g}",
                             vs_of(mixcal, s.id, ref, "test", "mixup", hi, "ece"), ">")], context)

    # Label smoothing and ERL against mixup at its validation-chosen α.
    others = [(m, v) for m, v in s.configs() if m in ("label_smoothing", "erl")]
    if a_star is not None and others:
        ref = f"mixup:{a_star:g}"
        doc.judged("Label smoothing and ERL calibrate less well than mixup", [
            Part.from_vs(f"ECE, {label(m, v)} − mixup α={a_star:g}",
                         vs_of(mixcal, s.id, ref, "test", m, v, "ece"), ">") for m, v in others])

    # Feature-only mixup against full mixup at the same α.
    fm = [v for m, v in s.configs() if m == "feature_mixup"]
    if fm and fm[0] in alphas:
        v = fm[0]
        full_gain = b_ece - (s.mean("mixup", v, "test", "ece") or b_ece)
        fm_gain = b_ece - (s.mean("feature_mixup", v, "test", "ece") or b_ece)
        share = fm_gain / full_gain if full_gain > 0 else float("nan")
        doc.judged("Mixing features only keeps little of the benefit", [
            Part.from_vs(f"ECE, features-only − full mixup at α={v:g}",
                         vs_of(mixcal, s.id, f"mixup:{v:g}", "test", "feature_mixup", v, "ece"), ">")],
            f"ECE reduction against the baseline at α={v:g}: full mixup {full_gain:+.4f}, "
            f"features only {fm_gain:+.4f} ({100 * share:.0f}% of it).")

    # Noise.
    if a_star is not None:
        doc.judged("Mixup is less confident on random noise", [
            Part.from_vs(f"confidence on Gaussian noise, mixup α={a_star:g} − baseline",
                         s.vs("mixup", a_star, "noise", "mean_confidence"), "<")],
            f"noise confidence baseline {fmt(s.mean('baseline', 0, 'noise', 'mean_confidence'))}, "
            f"mixup α={a_star:g} {fmt(s.mean('mixup', a_star, 'noise', 'mean_confidence'))}; "
            f"AUROC (test vs noise) difference {ci(s.vs('mixup', a_star, 'noise', 'auroc'))}.")

    # Zhang et al.: accuracy on clean data.
    if a_star is not None:
        doc.judged("Mixup improves accuracy on clean data (Zhang et al.)", [
            Part.from_vs(f"test accuracy, mixup α={a_star:g} − baseline",
                         s.vs("mixup", a_star, "test", "accuracy"), ">")],
            "The paper's gains are on CIFAR and ImageNet networks trained for 200 epochs; "
            "here 3,000 images and LeNet.")

    # Figure 1: evolution on the training data.
    doc.add("## 2. Calibration during training (Thulasidasan et al., Figure 1)", "",
            "The paper's Figure 1 shows the joint density of accuracy and confidence at "
            "several epochs: the baseline drifts from under- to overconfidence, mixup stays "
            "near the diagonal. Here: the reliability bins of 1,000 fixed training examples "
            "(split `train`, labels as trained on) and of the test split, at epochs 1, 5, 15 "
            "and 30, for seed 0 of the baseline (top row) and of mixup α = 0.4 (bottom row) "
            "of the sweep above. A bubble is a confidence bin at (mean confidence, accuracy), "
            "its area the share of examples; red below the diagonal (overconfident).", "")
    base, mix = s.job("baseline", 0), s.job("mixup", 0.4)
    if base and mix:
        doc.plot("evolution-train.svg", "evolution", base, "--with", mix, "--split", "train",
                 "--epochs", "1,5,15,30")
        doc.plot("evolution-test.svg", "evolution", base, "--with", mix, "--split", "test",
                 "--epochs", "1,5,15,30")
    epochs = [e for e in (1, 2, 3, 5, 10, 15, 20, 25, 30)]
    gaps = {}  # (method, split) -> {epoch: mean(confidence - accuracy)}
    for split in ("train", "val", "test"):
        for e in epochs:
            at = summary_at_epoch(mixcal, s.id, e, split)
            for m, v in (("baseline", 0.0), ("mixup", 0.4)):
                if (m, v) in at:
                    gaps.setdefault((m, split), {})[e] = at[(m, v)]
    rows = [[f"{m} ({split})"] + [fmt(g.get(e), 3) for e in epochs] for (m, split), g in gaps.items()]
    doc.add("Mean confidence − accuracy over seeds at each epoch (> 0 overconfident, < 0 "
            "underconfident):", "")
    doc.table(["method (split)"] + [f"epoch {e}" for e in epochs], rows)

    # Judged per seed on held-out data (split val, as the paper measured it),
    # and likewise on the training examples.
    def drift_parts(split):
        rows = per_seed(mixcal, s.id, split)
        b, m = rows.get(("baseline", 0.0), {}), rows.get(("mixup", 0.4), {})
        if not b or not m:
            return None
        gap = lambda r: r.get("mean_confidence", 0) - r.get("accuracy", 0)
        last = max(max(e) for e in b.values())
        first = [gap(ep[1]) for ep in b.values() if 1 in ep]
        end = [gap(ep[last]) for ep in b.values() if last in ep]
        nearer = [abs(gap(m[seed][last])) - abs(gap(b[seed][last]))
                  for seed in b if seed in m and last in m[seed] and last in b[seed]]
        return [Part.from_samples(f"{split}: baseline confidence − accuracy at epoch 1", first, "<"),
                Part.from_samples(f"{split}: baseline confidence − accuracy at epoch {last}", end, ">"),
                Part.from_samples(f"{split}: |mixup gap| − |baseline gap| at epoch {last}, per seed",
                                  nearer, "<")]
    val_parts, train_parts = drift_parts("val"), drift_parts("train")
    doc.add("Judged per seed (Student-t intervals over seeds, a stated test: no paired "
            "comparison exists for a gap): the baseline underconfident at epoch 1 and "
            "overconfident at the end, and mixup's gap smaller than the baseline's at the "
            "end. On held-out data (`val`), as the paper measured it; the same on 1,000 "
            "training examples (`train`) is reported beside it.", "")
    claim = ("Baseline drifts from under- to overconfidence during training, mixup stays "
             "near the diagonal (held-out data)")
    if val_parts:
        doc.judged(claim, val_parts)
    else:
        doc.judged(claim, [], not_tested="this sweep has no validation split stored")
    if train_parts:
        doc.judged("The same drift on training examples", train_parts)


_epoch_cache = {}


def summary_at_epoch(mixcal, sweep_id, epoch, split):
    """(method, value) -> mean (confidence - accuracy) at `epoch` on `split`."""
    key = (sweep_id, epoch, split)
    if key not in _epoch_cache:
        r = subprocess.run([mixcal, "summary", str(sweep_id), "--at", f"epoch:{epoch}",
                            "--split", split, "--format", "json"], capture_output=True, text=True)
        out = {}
        if r.returncode == 0:
            for row in json.loads(r.stdout):
                st = {x["metric"]: x["mean"] for x in row.get("stats", [])}
                if "mean_confidence" in st and "accuracy" in st:
                    out[(row["method"], float(row.get("value", 0)))] = st["mean_confidence"] - st["accuracy"]
        _epoch_cache[key] = out
    return _epoch_cache[key]


def unknown_classes(doc, s):
    doc.add("## 3. Unknown categories (Thulasidasan et al., out-of-distribution)", "",
            "Claim: mixup-trained networks are less confident on inputs of categories they "
            "never saw. The paper trains on STL-10 and tests on ImageNet images; here the "
            "network trains on Fashion-MNIST classes 0–4 (T-shirt, trouser, pullover, dress, "
            "coat) and the test images of classes 5–9 (sandal, shirt, sneaker, bag, ankle "
            "boot) are the out-of-distribution split (`data.classes`, `evaluation.oodDataset: "
            "held-out-classes`); AUROC of max-probability separating known from unknown.", "",
            f"Setting (`{s.spec_file}`, sweep {s.id}): as section 1, 3,000 training images "
            f"of the 5 classes; {len(s.jobs)} jobs.", "",
            "```", f"mixcal submit {s.spec_file} --wait",
            f"mixcal summary {s.id} --split ood --vs baseline", "```", "")
    rows = []
    for m, v in s.configs():
        rows.append([label(m, v), ms(s, m, v, "test", "accuracy"), ms(s, m, v, "test", "ece"),
                     ms(s, m, v, "ood", "mean_confidence"), ms(s, m, v, "ood", "auroc"),
                     ms(s, m, v, "noise", "mean_confidence"),
                     ci(s.vs(m, v, "ood", "mean_confidence")) if m != "baseline" else "",
                     ci(s.vs(m, v, "ood", "auroc")) if m != "baseline" else ""])
    doc.table(["method", "accuracy", "ECE", "unknown-class confidence", "AUROC",
               "noise confidence", "Δ confidence vs baseline", "Δ AUROC vs baseline"], rows)
    doc.plot("unknown-classes-confidence-vs-alpha.svg", "sweep", s.id, "--metric",
             "mean_confidence", "--split", "ood", "--param", "alpha")
    doc.plot("unknown-classes-auroc-vs-alpha.svg", "sweep", s.id, "--metric", "auroc",
             "--split", "ood", "--param", "alpha")
    a_star, chosen_on = best_alpha(s)
    doc.add(f"Judged on mixup's mean confidence on the unknown classes against the baseline's "
            f"(the claim), at α={a_star:g} (lowest ECE on the {chosen_on} split); the AUROC beside it.", "")
    doc.judged("Mixup is less confident on unknown categories", [
        Part.from_vs(f"confidence on classes 5–9, mixup α={a_star:g} − baseline",
                     s.vs("mixup", a_star, "ood", "mean_confidence"), "<")],
        f"confidence on classes 5–9: baseline {fmt(s.mean('baseline', 0, 'ood', 'mean_confidence'))}, "
        f"mixup α={a_star:g} {fmt(s.mean('mixup', a_star, 'ood', 'mean_confidence'))}; AUROC difference "
        f"{ci(s.vs('mixup', a_star, 'ood', 'auroc'))}.")


def overlap(doc, sweeps, mixcal_bin):
    doc.add("## 4. Class overlap and temperature scaling (Chidambaram & Ge 2024)", "",
            "*On the Limitations of Temperature Scaling for Distributions with Overlaps*, "
            "ICLR 2024. Claim: as classes overlap more, an ERM model's calibration after "
            "temperature scaling degrades, while mixup stays better calibrated after "
            "temperature scaling.", "",
            "Setting (`examples/papers/chidambaram-overlap.json`, one sweep per number of "
            "classes and separation): Gaussian classes in 256 dimensions (N(0, I) against "
            "N(μ·1, I) for 2 classes; random-sign means for 10), 1,000 training examples "
            "(900 after the 10% calibration split), 4,000 test; an MLP trained 100 epochs "
            "with Adam (lr 1e-3, batch 500) as in the paper; baseline (ERM) against mixup "
            "α = 1; ECE on the test split after temperature scaling (`test_ts`).", "",
            "```", "bench/reproduce.sh   # submits the grid", "mixcal summary SWEEP --split test_ts --vs baseline",
            "```", "")
    rows, points = [], []
    for s in sweeps:
        syn = s.spec["data"]["synthetic"]
        k, sep = syn["classes"], syn["separation"]
        e_b, e_m = s.mean("baseline", 0, "test_ts", "ece"), s.mean("mixup", 1.0, "test_ts", "ece")
        d = s.vs("mixup", 1.0, "test_ts", "ece")
        points.append((k, sep, e_b, e_m, d))
        rows.append([str(k), f"{sep:g}", f"sweep {s.id}", ms(s, "baseline", 0, "test", "accuracy"),
                     ms(s, "baseline", 0, "test", "ece"), ms(s, "baseline", 0, "test_ts", "ece"),
                     ms(s, "mixup", 1.0, "test_ts", "ece"), ci(d)])
    doc.table(["classes", "separation μ", "sweep", "ERM accuracy", "ERM ECE", "ERM ECE (TS)",
               "mixup ECE (TS)", "mixup − ERM, ECE (TS)"], rows)
    for s in sweeps:
        syn = s.spec["data"]["synthetic"]
        if syn["separation"] == min(x[1] for x in points):
            doc.plot(f"overlap-k{syn['classes']}-ece-ts-by-epoch.svg", "curves", s.id,
                     "--metric", "ece", "--split", "test_ts")
    # Per number of classes: (a) ERM's ECE after TS higher at the largest
    # overlap than at the smallest, per seed (the seeds are the same numbers
    # in both sweeps; a stated test, since the sweeps differ); (b) mixup +
    # TS below ERM + TS at the largest overlap, paired by seed.
    ks = sorted(set(p[0] for p in points))
    parts = []
    for k in ks:
        by_sep = sorted([s for s in sweeps if s.spec["data"]["synthetic"]["classes"] == k],
                        key=lambda s: -s.spec["data"]["synthetic"]["separation"])
        if len(by_sep) < 2:
            continue
        small, large = by_sep[0], by_sep[-1]  # least and most overlap

        def final_ece(sw):
            seeds = per_seed(mixcal_bin, sw.id, "test_ts").get(("baseline", 0.0), {})
            return {seed: ep[max(ep)].get("ece") for seed, ep in seeds.items() if ep}
        e_small, e_large = final_ece(small), final_ece(large)
        diffs = [e_large[seed] - e_small[seed] for seed in e_large if seed in e_small]
        sep_s = small.spec["data"]["synthetic"]["separation"]
        sep_l = large.spec["data"]["synthetic"]["separation"]
        parts.append(Part.from_samples(
            f"{k} classes: ERM ECE (TS) at μ={sep_l:g} − at μ={sep_s:g}, per seed", diffs, ">"))
        parts.append(Part.from_vs(f"{k} classes: mixup − ERM, ECE (TS) at μ={sep_l:g}",
                                  large.vs("mixup", 1.0, "test_ts", "ece"), "<"))
    doc.add("Judged per number of classes: ERM's ECE after temperature scaling higher at the "
            "largest overlap than at the smallest (per seed: the same seed numbers in both "
            "sweeps), and mixup's below ERM's at the largest overlap (paired by seed).", "")
    doc.judged("Temperature scaling of ERM degrades with overlap; mixup + TS stays better", parts)


def label_noise(doc, s):
    doc.add("## 5. Label noise: memorisation and calibration (Zhang et al. 2018; Chidambaram & Ge 2024)", "",
            "Zhang et al., *mixup: Beyond Empirical Risk Minimization*, ICLR 2018: under "
            "label noise, mixup memorises the corrupted labels less and generalises better. "
            "Chidambaram & Ge: with label noise, ERM + temperature scaling is worse calibrated "
            "than mixup + temperature scaling.", "",
            f"Setting (`{s.spec_file}`, sweep {s.id}): section 1's network and data with 30% "
            "pair noise (each class flips to one fixed other class, the temperature-scaling "
            "paper's kind) on the training labels, validation included; the test labels "
            "are clean. Memorisation is the accuracy on 1,000 fixed *training* examples "
            "against their noisy labels (split `train`): about 70% of them carry the "
            "true label, so accuracy above ~0.7 means wrong labels were learnt.", "",
            "```", f"mixcal submit {s.spec_file} --wait",
            f"mixcal summary {s.id} --split train --vs baseline", "```", "")
    rows = []
    for m, v in s.configs():
        rows.append([label(m, v), ms(s, m, v, "train", "accuracy"), ms(s, m, v, "test", "accuracy"),
                     ms(s, m, v, "test", "ece"), ms(s, m, v, "test_ts", "ece"),
                     ci(s.vs(m, v, "train", "accuracy")) if m != "baseline" else "",
                     ci(s.vs(m, v, "test", "accuracy")) if m != "baseline" else "",
                     ci(s.vs(m, v, "test_ts", "ece")) if m != "baseline" else ""])
    doc.table(["method", "accuracy on noisy training labels", "test accuracy", "test ECE",
               "test ECE (TS)", "Δ noisy-label accuracy", "Δ test accuracy", "Δ ECE (TS)"], rows)
    doc.plot("label-noise-train-accuracy-by-epoch.svg", "curves", s.id, "--metric", "accuracy",
             "--split", "train")
    doc.plot("label-noise-test-accuracy-by-epoch.svg", "curves", s.id, "--metric", "accuracy")
    a_star, chosen_on = best_alpha(s)
    doc.add(f"Judged (Zhang) at mixup α={a_star:g}, the lowest ECE on the {chosen_on} split "
            "(whose labels are noisy too): its accuracy on the noisy training labels (lower = "
            "less memorised) and its test accuracy, against the baseline's.", "")
    doc.judged("Under label noise mixup memorises less and generalises better", [
        Part.from_vs(f"accuracy on noisy training labels, mixup α={a_star:g} − baseline",
                     s.vs("mixup", a_star, "train", "accuracy"), "<"),
        Part.from_vs(f"test accuracy, mixup α={a_star:g} − baseline",
                     s.vs("mixup", a_star, "test", "accuracy"), ">")],
        f"noisy-label accuracy baseline {fmt(s.mean('baseline', 0, 'train', 'accuracy'))}, test "
        f"accuracy {fmt(s.mean('baseline', 0, 'test', 'accuracy'))}.")
    doc.add("ECE after temperature scaling, for the record: baseline "
            f"{fmt(s.mean('baseline', 0, 'test_ts', 'ece'))}; " + "; ".join(
                f"mixup {a:g} {fmt(s.mean('mixup', a, 'test_ts', 'ece'))} "
                f"(Δ {ci(s.vs('mixup', a, 'test_ts', 'ece'))})"
                for a in sorted(v for m, v in s.configs() if m == "mixup")) + ".", "")
    doc.judged("Under label noise mixup + TS is better calibrated than ERM + TS", [],
               not_tested=("here the temperature is fitted on noisy validation labels and judged "
                           "on clean test labels, which no method can be calibrated for at once; "
                           "the paper's setting needs the noise in the test labels too (or clean "
                           "validation labels), which this sweep does not have"))


def not_tested(doc):
    """The papers' claims this setting cannot test, each with what would."""
    doc.add("## Claims not tested here", "",
            "Each is listed in the verdicts table with its reason.", "")
    for claim, why in [
        ("Mixup calibrates ImageNet-scale networks (Thulasidasan et al., ImageNet)",
         "needs ImageNet and GPUs; no dataset beyond Fashion-MNIST can be installed here. "
         "A lab would run `examples/mixup-cifar100-vgg16.json`'s setting on its own data "
         "(`data.dataPath`, docs/own-model.md)"),
        ("Mixup calibrates text classifiers (Thulasidasan et al., NLP)",
         "the paper's text datasets are not available here; mixcal trains token-id models with "
         "mixup in embedding space (`examples/own-model/spec-text.json`), so a lab with the "
         "data can run it"),
        ("ECE against α on CIFAR-10 with ResNet-18, best near α = 0.4 (Thulasidasan et al.)",
         "needs CIFAR-10 and GPUs: `examples/papers/thulasidasan-cifar10-resnet18-alpha.json` is "
         "that α grid (0, 0.1, …, 0.7) ready for a lab's GPU workers; section 1 runs the same "
         "grid in this regime"),
        ("Temperature scaling cannot fix the calibration of many-class problems with overlap, "
         "in the limit of many classes (Chidambaram & Ge)",
         "the bound is asymptotic in the number of classes; section 4 runs 2 and 10 classes, "
         "which test its direction, not its limit"),
    ]:
        doc.judged(claim, [], not_tested=why)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True, help="bench/reproduce.sh's work directory")
    ap.add_argument("--out", required=True, help="where results.md and results/ go")
    ap.add_argument("--mixcal", required=True, help="the mixcal CLI binary")
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "results"), exist_ok=True)
    sweeps = []
    with open(os.path.join(args.work, "sweeps.tsv")) as f:
        for line in f:
            name, sid, spec_file = line.rstrip("\n").split("\t")
            sweeps.append(Sweep(name, sid, spec_file, args.work))
    by_name = {s.name: s for s in sweeps}
    doc = Doc(args.out, args.mixcal)
    elapsed = ""
    p = os.path.join(args.work, "elapsed.txt")
    if os.path.exists(p):
        elapsed = open(p).read().strip()
    doc.add("# The papers' claims, reproduced through mixcal", "",
            "Every sweep below ran through a mixcal coordinator and worker (`bench/reproduce.sh`: "
            f"one CPU worker with a job per core on {os.cpu_count()} cores; {elapsed}). The "
            "tables are `mixcal summary --vs baseline` (mean ± std over seeds; differences "
            "to the baseline paired by seed with a 95% Student-t interval, * where it "
            "excludes 0), the figures `mixcal plot`, the verdicts rules applied to those "
            "numbers (stated with each claim) by `bench/write_results.py`.", "",
            "The regime: the claims are about networks that fit their training labels and "
            "become overconfident. On 2 cores that is LeNet on 3,000 Fashion-MNIST images for "
            "30 epochs without weight decay (baseline test ECE ≈ 0.1, almost all of it "
            "overconfidence), not the papers' CIFAR/ImageNet networks trained for 200 "
            "epochs; `examples/mixup-cifar100-vgg16.json` is that setting for GPU workers. "
            "Why 3,000 images: trained on all 60,000, the same network is barely "
            "overconfident after the epochs 2 cores allow, and a calibration method has "
            "nothing to correct; a small training set makes it fit its labels, which is "
            "the regime the claims are about.", "")
    doc.add("Choices are made on validation data: mixup's α for each comparison is the one "
            "with the lowest ECE on the `val` split (10% of the training images, held out and "
            "scored every epoch), never on test; the numbers reported are the test split's at "
            "the final epoch.", "")
    doc.add("## Verdicts", "",
            "One rule for every claim (`bench/verdicts.py`, unit-tested in "
            "`tests/bench/verdicts_test.py`), applied to the numbers below. A claim is judged "
            "by its parts, each a difference with a 95% interval over seeds (paired by seed, "
            "or a stated per-seed test): a part *holds* when its interval lies wholly on the "
            "claimed side, is *contradicted* when it lies wholly on the other. **Reproduced**: "
            "every part holds. **Partly reproduced**: at least one part holds and none is "
            "contradicted. **Not reproduced**: otherwise — a point estimate in the claimed "
            "direction is not enough, however many seeds ran. "
            "**Not tested**: this setting cannot test the claim (the reason is given).", "",
            "VERDICTS_TABLE", "")
    if "thulasidasan-fmnist" in by_name:
        thulasidasan(doc, by_name["thulasidasan-fmnist"], args.mixcal)
    if "thulasidasan-unknown-classes" in by_name:
        unknown_classes(doc, by_name["thulasidasan-unknown-classes"])
    ov = [s for s in sweeps if s.name.startswith("overlap-")]
    if ov:
        overlap(doc, ov, args.mixcal)
    if "label-noise" in by_name:
        label_noise(doc, by_name["label-noise"])
    not_tested(doc)
    states = {}
    for s in sweeps:
        for k, v in s.states().items():
            states[k] = states.get(k, 0) + v
    doc.add("## The runs", "", f"{len(sweeps)} sweeps, "
            + ", ".join(f"{v} jobs {k.lower()}" for k, v in sorted(states.items()))
            + f". Work directory: `{os.path.relpath(args.work)}` (the SQLite file holds every "
              "epoch of every job: `mixcal metrics SWEEP` exports them). All sweeps were "
              "submitted at once and shared the worker in fair turns; the time a sweep "
              "would take alone is its jobs' summed run time over the "
              f"{os.cpu_count()} slots.", "")
    slots = max(1, os.cpu_count() or 1)
    doc.table(["sweep", "name", "jobs", "summed job time", f"alone on {slots} slots"],
              [[s.id, s.name, str(len(s.jobs)), f"{s.job_seconds() / 60:.1f} min",
                f"{s.job_seconds() / 60 / slots:.1f} min"] for s in sweeps])
    table = ["| claim | verdict |", "|---|---|"] + [f"| {c} | **{v}** |" for c, v, _ in doc.verdicts]
    text = "\n".join(doc.lines).replace("VERDICTS_TABLE", "\n".join(table))
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text + "\n")
    for c, v, why in doc.verdicts:
        print(f"{v:18s} {c}: {why}")


if __name__ == "__main__":
    main()
