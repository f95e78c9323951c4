"""The report of scripts/load.sh, from its two files of results.

Each line of a file is one round of one gateway in one configuration: the round, the label
(`audit`, `quiet`, and `ref-audit`, `ref-quiet` for the reference), then five runs (plain,
token, plain, JWT, plain), each as requests/s, the 99th percentile in ms and the gateway's CPU
time per request in µs; lines of flat-out runs end with the audit log's line count and the
lines it dropped.

Two ratios compare a credential with the plain key, each to the mean of the two plain runs
beside it: requests/s (the credential's to the plain key's) and cost (the plain key's CPU time
per request to the credential's: the throughput ratio of a gateway with a core to itself, which
the host's other tenants move far less than requests/s).

    python3 scripts/load_report.py FLAT_OUT PACED PACE_MS
"""

import statistics
import sys

T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23,
       15: 2.13, 20: 2.09, 25: 2.06, 30: 2.04, 40: 2.02, 60: 2.00}


def interval(values):
    """The mean and the half-width of its 95 % confidence interval (Student's t)."""
    n = len(values)
    if n < 2:
        return values[0], float("nan")
    t = T95[max(k for k in T95 if k <= n - 1)]
    return statistics.mean(values), t * statistics.stdev(values) / n ** 0.5


def summary(values):
    mean, half = interval(values)
    return f"{statistics.median(values):.3f} (mean {mean:.3f} ± {half:.3f})"


def rounds(path):
    """Each line as (round, label, runs, rest): runs are five (requests/s, p99, CPU µs) triples."""
    for line in open(path):
        round_, label, *fields = line.split()
        values = list(map(float, fields[:15]))
        runs = [values[i:i + 3] for i in range(0, 15, 3)]
        yield round_, label, runs, fields[15:]


def ratios(runs):
    """The token's and the JWT's ratios to the plain runs beside them: requests/s, cost, p99."""
    plain1, token, plain2, jwt, plain3 = runs

    def beside(credential, before, after):
        rate, p99, cpu = ((before[i] + after[i]) / 2 for i in range(3))
        return {"rate": credential[0] / rate, "cost": cpu / credential[2], "p99": credential[1] / p99}

    return beside(token, plain1, plain2), beside(jwt, plain2, plain3)


def flat_out_report(path):
    print(f"{'round':>5} {'config':<9} {'plain/s':>8} {'token/s':>8} {'ratio':>6} {'JWT/s':>8} {'ratio':>6} "
          f"{'plain µs':>8} {'token µs':>8} {'ratio':>6} {'JWT µs':>8} {'ratio':>6} {'log lines':>10} {'dropped':>8}")
    by_label, by_round = {}, {}
    for round_, label, runs, (lines, dropped) in rounds(path):
        token, jwt = ratios(runs)
        collected = by_label.setdefault(label, {})
        for credential, figures in (("token", token), ("jwt", jwt)):
            for kind, value in figures.items():
                collected.setdefault((credential, kind), []).append(value)
        by_round.setdefault(round_, {})[label] = (token, jwt)
        plain_rate = statistics.mean(runs[i][0] for i in (0, 2, 4))
        plain_cpu = statistics.mean(runs[i][2] for i in (0, 2, 4))
        print(f"{round_:>5} {label:<9} {plain_rate:>8.0f} {runs[1][0]:>8.0f} {token['rate']:>6.3f} "
              f"{runs[3][0]:>8.0f} {jwt['rate']:>6.3f} {plain_cpu:>8.2f} {runs[1][2]:>8.2f} "
              f"{token['cost']:>6.3f} {runs[3][2]:>8.2f} {jwt['cost']:>6.3f} {lines:>10} {dropped:>8}")
    print()
    for label, collected in by_label.items():
        n = len(collected[("token", "rate")])
        print(f"{label}, {n} rounds; medians, and means with their 95 % confidence intervals:")
        for credential, name in (("token", "token"), ("jwt", "JWT")):
            print(f"  {name:<5} requests/s ratio {summary(collected[(credential, 'rate')])}, "
                  f"cost ratio {summary(collected[(credential, 'cost')])}, "
                  f"p99 ratio {statistics.median(collected[(credential, 'p99')]):.2f}")
    paired_changes(by_round)


def paired_changes(by_round):
    """Each ratio's change from the reference's in the same round, where a reference ran."""
    for config in ("audit", "quiet"):
        pairs = [(r[config], r["ref-" + config]) for r in by_round.values()
                 if config in r and "ref-" + config in r]
        if not pairs:
            continue
        print(f"{config}: change from the reference's ratios, paired by round ({len(pairs)} rounds, "
              "mean ± 95 % confidence):")
        for index, name in ((0, "token"), (1, "JWT")):
            changes = []
            for kind in ("rate", "cost"):
                mean, half = interval([now[index][kind] - ref[index][kind] for now, ref in pairs])
                changes.append(f"{'requests/s' if kind == 'rate' else 'cost'} {mean:+.3f} ± {half:.3f}")
            print(f"  {name:<5} " + ", ".join(changes))


def paced_report(path, pace_ms):
    print()
    print(f"The same runs at a fixed pace ({pace_ms} ms between a connection's answer and its next "
          "request), p99 in ms:")
    print(f"{'round':>5} {'config':<9} {'plain/s':>8} {'plain p99':>10} {'token':>6} {'ratio':>6} {'JWT':>6} {'ratio':>6}")
    by_label = {}
    for round_, label, runs, _ in rounds(path):
        token, jwt = ratios(runs)
        collected = by_label.setdefault(label, {"token": [], "jwt": []})
        collected["token"].append(token["p99"])
        collected["jwt"].append(jwt["p99"])
        plain_p99 = statistics.mean(runs[i][1] for i in (0, 2, 4))
        print(f"{round_:>5} {label:<9} {statistics.mean(runs[i][0] for i in (0, 2, 4)):>8.0f} "
              f"{plain_p99:>10.2f} {runs[1][1]:>6.2f} {token['p99']:>6.2f} {runs[3][1]:>6.2f} {jwt['p99']:>6.2f}")
    print()
    for label, collected in by_label.items():
        print(f"{label}: p99 ratio at a fixed pace, median token {summary(collected['token'])}, "
              f"JWT {summary(collected['jwt'])}")


if __name__ == "__main__":
    flat_out_report(sys.argv[1])
    paced_report(sys.argv[2], sys.argv[3])
