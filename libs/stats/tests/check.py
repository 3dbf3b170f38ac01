"""Independent figures for chorus-stats, computed with numpy and scipy from a campaign CSV and
its plan, printed as JSON for tests/scipy.rs to compare with the Rust results.

Written from the definitions, not from the Rust code:
- ratio metrics (conversions per click, engagements per impression): R = sum(y) / sum(x) over
  influencers, Var(R) by the delta method from the sample covariance matrix of (x, y)
  (np.cov), Var = (s_yy - 2 R s_xy + R^2 s_xx) / (n xbar^2); intervals and Welch tests with
  scipy.stats.t;
- revenue per influencer: scipy.stats.ttest_ind(equal_var=False) and its confidence_interval,
  segment intervals with scipy.stats.t.interval and scipy.stats.sem;
- Holm by its definition (step-down, monotone, capped at 1);
- probability best: the exact integral of phi_k(x) * prod_{j != k} Phi_j(x) by
  scipy.integrate.quad (Rust draws it by Monte Carlo);
- allocation: scipy.stats.chisquare;
- sample size: (z_{1-a/2} + z_power)^2 * 2 sigma^2 / delta^2 with scipy.stats.norm quantiles,
  sigma^2 the pooled per-unit variance (clustering included).

Usage: check.py CAMPAIGN.csv PLAN.csv"""
import csv
import itertools
import json
import sys

import numpy as np
from scipy import integrate, stats

ALPHA, CONF, POWER, MDE = 0.05, 0.95, 0.80, 0.20
MIN_INFLUENCERS, MIN_EVENTS = 10, 10
METRICS = {
    "conversions_per_click": ("clicks", "conversions"),
    "engagements_per_impression": ("impressions", "engagements"),
    "revenue_per_influencer": (None, "revenue_minor"),
}


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def holm(ps):
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def prob_best(estimates):
    out = []
    for k, (mk, sk) in enumerate(estimates):
        others = [e for j, e in enumerate(estimates) if j != k]

        def integrand(x):
            v = stats.norm.pdf(x, mk, sk)
            for m, s in others:
                v *= stats.norm.cdf(x, m, s)
            return v

        lo, hi = mk - 12 * sk, mk + 12 * sk
        out.append(integrate.quad(integrand, lo, hi, epsabs=1e-12, limit=200)[0])
    return out


def ratio_segment(x, y):
    n = len(x)
    r = y.sum() / x.sum()
    c = np.cov(np.vstack([x, y]), ddof=1)
    var = (c[1, 1] - 2 * r * c[0, 1] + r * r * c[0, 0]) / (n * x.mean() ** 2)
    se = float(np.sqrt(var))
    half = stats.t.ppf(0.5 + CONF / 2, n - 1) * se
    return {"value": r, "se": se, "df": n - 1, "ci_low": max(0.0, r - half), "ci_high": r + half}


def mean_segment(v):
    n = len(v)
    lo, hi = stats.t.interval(CONF, n - 1, loc=v.mean(), scale=stats.sem(v))
    return {"value": v.mean(), "se": stats.sem(v), "df": n - 1, "ci_low": lo, "ci_high": hi}


def main(campaign_path, plan_path):
    rows, plan = read(campaign_path), read(plan_path)
    order = [p["segment"] for p in plan]
    order += sorted({r["segment"] for r in rows} - set(order))
    data = {s: [r for r in rows if r["segment"] == s] for s in order}
    out = {"metrics": {}}
    for metric, (den, num) in METRICS.items():
        segs, enough = {}, {}
        for s in order:
            y = np.array([float(r[num]) for r in data[s]])
            x = np.array([float(r[den]) for r in data[s]]) if den else np.ones(len(y))
            with_data = int((x > 0).sum())
            if len(y) < 2 or x.sum() == 0:
                continue
            seg = ratio_segment(x, y) if den else mean_segment(y)
            seg.update(x=x, y=y, n=len(y), num=y.sum(), den=x.sum())
            segs[s] = seg
            if den:
                enough[s] = with_data >= MIN_INFLUENCERS and y.sum() >= MIN_EVENTS
            else:
                enough[s] = with_data >= MIN_INFLUENCERS and seg["se"] > 0
        pairs = []
        for a, b in itertools.combinations(order, 2):
            if not (enough.get(a) and enough.get(b)):
                continue
            sa, sb = segs[a], segs[b]
            if den:
                va, vb = sa["se"] ** 2, sb["se"] ** 2
                d = sa["value"] - sb["value"]
                se = np.sqrt(va + vb)
                df = (va + vb) ** 2 / (va**2 / (sa["n"] - 1) + vb**2 / (sb["n"] - 1))
                p = 2 * stats.t.sf(abs(d / se), df)
                half = stats.t.ppf(0.5 + CONF / 2, df) * se
                lo, hi = d - half, d + half
            else:
                res = stats.ttest_ind(sa["y"], sb["y"], equal_var=False)
                ci = res.confidence_interval(CONF)
                d, p, df, lo, hi = sa["y"].mean() - sb["y"].mean(), res.pvalue, res.df, ci.low, ci.high
            pairs.append({"a": a, "b": b, "difference": d, "p_value": p, "df": df,
                          "ci_low": lo, "ci_high": hi})
        for pair, adj in zip(pairs, holm([p["p_value"] for p in pairs])):
            pair["p_adjusted"] = adj
            pair["significant"] = bool(adj <= ALPHA)
        ready = [s for s in order if enough.get(s)]
        best = prob_best([(segs[s]["value"], segs[s]["se"]) for s in ready]) if len(ready) > 1 else []
        # sample size from the pooled per-unit variance
        if den:
            num_v = sum(segs[s]["se"] ** 2 * segs[s]["den"] ** 2 for s in segs)
            den_v = sum(segs[s]["den"] for s in segs)
        else:
            num_v = sum(segs[s]["y"].var(ddof=1) * (segs[s]["n"] - 1) for s in segs)
            den_v = sum(segs[s]["n"] - 1 for s in segs)
        baseline = sum(segs[s]["num"] for s in segs) / sum(segs[s]["den"] for s in segs)
        unit_var = num_v / den_v
        z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)
        required = z**2 * 2 * unit_var / (MDE * baseline) ** 2
        out["metrics"][metric] = {
            "segments": {s: {k: float(segs[s][k]) for k in ("value", "se", "ci_low", "ci_high")}
                         | {"enough": bool(enough[s])} for s in segs},
            "pairs": [{k: (v if isinstance(v, (str, bool)) else float(v)) for k, v in p.items()}
                      for p in pairs],
            "probability_best": dict(zip(ready, best)),
            "required_per_segment": float(required),
            "design_effect": float(unit_var / (baseline * (1 - baseline))) if 0 < baseline < 1 else None,
        }
    observed = [len({r["influencer"] for r in data[p["segment"]]}) for p in plan]
    planned = np.array([float(p["influencers"]) for p in plan])
    expected = planned / planned.sum() * sum(observed)
    chi = stats.chisquare(observed, expected)
    out["allocation"] = {"statistic": float(chi.statistic), "p_value": float(chi.pvalue),
                         "df": len(plan) - 1}
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
