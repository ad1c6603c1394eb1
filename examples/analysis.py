#!/usr/bin/python3
"""A sweep analysed as in a notebook: the quickstart's table and a figure,
with the mixcal package, pandas and matplotlib (Debian's python3-matplotlib).

    bash deploy/quickstart.sh --keep          # a sweep to analyse, coordinator kept up
    /usr/bin/python3 examples/analysis.py --sweep 1 --out ece-by-epoch.png

Each cell below is what one would type into a notebook.
"""
import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import mixcal  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--sweep", type=int, default=1)
p.add_argument("--out", default="ece-by-epoch.png")
a = p.parse_args()

# Cell 1: connect ($MIXCAL_ADDRESS, $MIXCAL_TOKEN as for the CLI).
c = mixcal.Client()
print(c.sweeps().head())

# Cell 2: the quickstart's table: each method at its final epoch, mean and
# std over seeds, and the difference to the baseline paired by seed.
s = c.summary(a.sweep, split="test", vs="baseline")
cols = ["method", "hyperparameter", "seeds", "accuracy_mean", "ece_mean", "ece_std",
        "oe_mean", "ece_diff", "ece_low", "ece_high"]
print(s[[col for col in cols if col in s.columns]].to_string(index=False, float_format="%.4f"))

# Cell 3: every epoch of every job, into one frame; ECE by epoch, mean over
# seeds, one line per method.
df = c.metrics(a.sweep, split="test")
df["label"] = df.apply(lambda r: r["method"] if r["method"] == "baseline"
                       else "%s %g" % (r["method"], r["hyperparameter"]), axis=1)
curves = df.groupby(["label", "epoch"])["ece"].agg(["mean", "std"]).reset_index()
fig, ax = plt.subplots(figsize=(6, 4))
for label, g in curves.groupby("label"):
    (line,) = ax.plot(g["epoch"], g["mean"], label=label,
                      color="black" if label == "baseline" else None,
                      linestyle="--" if label == "baseline" else "-")
    ax.fill_between(g["epoch"], g["mean"] - g["std"].fillna(0), g["mean"] + g["std"].fillna(0),
                    color=line.get_color(), alpha=0.15, linewidth=0)
ax.set_xlabel("epoch")
ax.set_ylabel("ECE (test)")
ax.xaxis.get_major_locator().set_params(integer=True)
ax.set_title("%s: ECE by epoch (mean ± std over seeds)" % c.sweep(a.sweep)["name"])
ax.legend(frameon=False)
fig.tight_layout()
fig.savefig(a.out, dpi=150)
print("wrote", a.out)
