"""Writes the fixed campaigns that check.py and tests/scipy.rs read (run once; the CSVs are
committed, so the checks never depend on this script's random numbers).

cities: Austin converts better (4%) than Denver and Portland (about 2.3%), Boise has too few
influencers; niches: two segments with the same rates (no real difference) and a plan that
the allocation does not follow."""
import csv
import numpy as np

rng = np.random.default_rng(14)

def campaign(path, segments):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["influencer", "segment", "clicks", "conversions", "impressions",
                    "engagements", "revenue_minor", "spend_minor"])
        k = 0
        for name, n, rate, eng in segments:
            for _ in range(n):
                k += 1
                clicks = int(rng.integers(30, 600))
                p = rng.beta(2.0, 2.0 * (1 - rate) / rate)
                conv = int(rng.binomial(clicks, p))
                imps = int(rng.integers(2_000, 40_000))
                e = int(rng.binomial(imps, rng.beta(5.0, 5.0 * (1 - eng) / eng)))
                revenue = int(sum(rng.integers(1_500, 9_000) for _ in range(conv)))
                spend = int(rng.integers(20_000, 60_000))
                w.writerow([f"inf-{k:03}", name, clicks, conv, imps, e, revenue, spend])

campaign("cities.csv", [("Austin", 25, 0.040, 0.030), ("Denver", 22, 0.023, 0.031),
                        ("Portland", 20, 0.024, 0.045), ("Boise", 6, 0.03, 0.03)])
campaign("niches.csv", [("fitness", 30, 0.03, 0.04), ("cooking", 14, 0.03, 0.04)])
with open("cities_plan.csv", "w", newline="") as f:
    csv.writer(f).writerows([["segment", "influencers", "spend_minor"],
                             ["Austin", 24, 1_000_000], ["Denver", 24, 1_000_000],
                             ["Portland", 24, 1_000_000], ["Boise", 8, 300_000]])
with open("niches_plan.csv", "w", newline="") as f:
    csv.writer(f).writerows([["segment", "influencers", "spend_minor"],
                             ["fitness", 22, 1_000_000], ["cooking", 22, 1_000_000],
                             ["travel", 10, 400_000]])
