"""Independent reference for the analytics on real data: reads PMData and Fitabase exports
directly and computes, with numpy and scipy, what docs/analytics.md specifies — baselines,
anomalies, correlations and personal records — printing them as JSON for the Rust test to
compare with what the API serves after the same files were pushed through it.

Usage: reference.py <data root>
"""

import csv
import datetime as dt
import gzip
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from scipy import stats

OSLO = ZoneInfo("Europe/Oslo")
LOWER_IS_BETTER = {"resting_heart_rate"}


def fixed(v):
    """The value as the platform stores it: millionths, rounded half away from zero."""
    r = v * 1e6
    return math.copysign(math.floor(abs(r) + 0.5), r)


def pmdata(root):
    """{user: {metric: {date: millionths}}} for the PMData participants."""
    users = {}
    for folder in sorted((root / "pmdata").glob("p*")):
        fitbit = folder / "fitbit"
        series = defaultdict(lambda: defaultdict(float))
        rhr = fitbit / "resting_heart_rate.json"
        if rhr.exists():
            for row in json.loads(rhr.read_text()):
                v = row["value"]["value"]
                if v > 0:
                    series["resting_heart_rate"][row["dateTime"][:10]] = fixed(v)
        for name in ("moderately_active_minutes.json", "very_active_minutes.json"):
            path = fitbit / name
            if path.exists():
                for row in json.loads(path.read_text()):
                    series["active_minutes"][row["dateTime"][:10]] += fixed(float(row["value"]))
        score = fitbit / "sleep_score.csv"
        if score.exists():
            latest = {}
            with score.open() as f:
                for row in csv.DictReader(f):
                    at = dt.datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
                    day = at.astimezone(OSLO).date().isoformat()
                    # The catalogue's rule for sleep_score is the last sample of the date.
                    if day not in latest or at > latest[day][0]:
                        latest[day] = (at, fixed(float(row["overall_score"])))
            for day, (_, v) in latest.items():
                series["sleep_score"][day] = v
        users["pmdata/" + folder.name] = {m: dict(s) for m, s in series.items() if s}
    return users


def us_date(s):
    m, d, y = s.split(" ")[0].split("/")
    return f"{int(y):04}-{int(m):02}-{int(d):02}"


def fitabase(root):
    base = root / "fitabase-fitbit-2016" / "2016-04-12_2016-05-12"
    users = defaultdict(lambda: defaultdict(dict))
    with (base / "dailyActivity_merged.csv").open() as f:
        for row in csv.DictReader(f):
            u, day = "fitabase/" + row["Id"], us_date(row["ActivityDate"])
            users[u]["steps"][day] = fixed(float(row["TotalSteps"]))
            users[u]["distance"][day] = fixed(float(row["TotalDistance"]) * 1000.0)
            users[u]["active_minutes"][day] = fixed(
                float(row["VeryActiveMinutes"]) + float(row["FairlyActiveMinutes"])
            )
            users[u]["total_energy"][day] = fixed(float(row["Calories"]))
    with (base / "sleepDay_merged.csv").open() as f:
        for row in csv.DictReader(f):
            u, day = "fitabase/" + row["Id"], us_date(row["SleepDay"])
            users[u]["sleep_duration"][day] = fixed(float(row["TotalMinutesAsleep"]))
    return {u: {m: dict(s) for m, s in series.items()} for u, series in users.items()}


def ordinal(day):
    return dt.date.fromisoformat(day).toordinal()


def baselines(metric, series):
    days = sorted(series)
    last = ordinal(days[-1])
    out = []
    for window in (28, 90):
        sel = [(ordinal(d) - last, series[d] / 1e6) for d in days if ordinal(d) > last - window]
        x = np.array([s[0] for s in sel], dtype=float)
        v = np.array([s[1] for s in sel])
        n = len(v)
        mean = float(v.mean())
        recent = v[x > -7]
        out.append(
            {
                "metric": metric,
                "window_days": window,
                "n": n,
                "mean": mean,
                "sd": float(v.std(ddof=1)) if n >= 2 else None,
                "median": float(np.median(v)),
                "p25": float(np.percentile(v, 25)),
                "p75": float(np.percentile(v, 75)),
                "min": float(v.min()),
                "max": float(v.max()),
                "slope_per_day": float(np.polyfit(x, v, 1)[0]) if len(set(x)) > 1 else None,
                "change_7d_pct": float((recent.mean() - mean) / abs(mean) * 100.0)
                if mean != 0
                else None,
                "as_of_date": days[-1],
            }
        )
    return out


def anomalies(metric, series):
    by_ord = {ordinal(d): (d, series[d] / 1e6) for d in series}
    out = []
    elevated = set()
    for o in sorted(by_ord):
        day, v = by_ord[o]
        window = np.array([by_ord[k][1] for k in range(o - 28, o) if k in by_ord])
        if metric == "resting_heart_rate" and v > 120:
            out.append({"metric": metric, "date": day, "method": "clinical"})
        if len(window) < 7:
            continue
        mean, sd = window.mean(), window.std(ddof=1)
        if sd > 0 and abs(v - mean) / sd >= 2.5:
            out.append({"metric": metric, "date": day, "method": "zscore", "z": (v - mean) / sd})
        p25, p75 = np.percentile(window, [25, 75])
        iqr = p75 - p25
        if v < p25 - 1.5 * iqr or v > p75 + 1.5 * iqr:
            out.append({"metric": metric, "date": day, "method": "iqr"})
        if metric == "resting_heart_rate" and v - np.median(window) >= 4:
            elevated.add(o)
            if o - 1 in elevated:
                out.append({"metric": metric, "date": day, "method": "rhr_elevation"})
    return out


def correlations(user_series):
    last = max(ordinal(d) for s in user_series.values() for d in s)
    first = last - 89
    out = []
    metrics = sorted(user_series)
    for a in metrics:
        for b in metrics:
            for lag in (0, 1):
                if (lag == 0 and a >= b) or (lag == 1 and a == b):
                    continue
                sa = {ordinal(d): v / 1e6 for d, v in user_series[a].items()}
                sb = {ordinal(d): v / 1e6 for d, v in user_series[b].items()}
                pairs = [
                    (sa[o], sb[o + lag])
                    for o in range(first, last + 1 - lag)
                    if o in sa and o + lag in sb
                ]
                if len(pairs) < 14:
                    continue
                x = np.array([p[0] for p in pairs])
                y = np.array([p[1] for p in pairs])
                if np.all(x == x[0]) or np.all(y == y[0]):
                    continue
                r, p = stats.pearsonr(x, y)
                if abs(r) <= 0.3 or p >= 0.05:
                    continue
                rho, sp = stats.spearmanr(x, y)
                out.append(
                    {
                        "metric_a": a,
                        "metric_b": b,
                        "lag_days": lag,
                        "n": len(pairs),
                        "pearson_r": float(r),
                        "pearson_p": float(p),
                        "spearman_rho": float(rho),
                        "spearman_p": float(sp),
                    }
                )
    return out


def records(metric, series):
    lower = metric in LOWER_IS_BETTER
    best = min(series.items(), key=lambda kv: ((kv[1] if lower else -kv[1]), kv[0]))
    return {"metric": metric, "kind": "best_daily", "value": best[1] / 1e6, "date": best[0]}


def main():
    root = Path(sys.argv[1])
    result = {}
    for user, series in {**pmdata(root), **fitabase(root)}.items():
        if not series:
            continue
        result[user] = {
            "baselines": [b for m, s in series.items() for b in baselines(m, s)],
            "anomalies": [a for m, s in series.items() for a in anomalies(m, s)],
            "correlations": correlations(series),
            "records": [records(m, s) for m, s in series.items()],
        }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
