#!/usr/bin/env python3
"""dashboard_check - check a Grafana dashboard against a scrape of /metrics.

Usage: dashboard_check.py DASHBOARD SCRAPE

Loads DASHBOARD as JSON, takes every PromQL expression in it (the "expr"
fields of its panels' targets, and the metric of a template variable's
label_values(METRIC, LABEL)), and finds the metric names each one uses:
what is left of the expression once strings, label matchers, range
brackets, numbers and durations, Grafana's $variables, the label lists
of by/without/on/ignoring/group_left/group_right, function calls and
keywords are taken out. Every name must be one that SCRAPE (a scrape of /metrics in the
Prometheus text format) exports: a sample's name, or a histogram's or
summary's family when the name ends in _bucket, _sum or _count. Every
expression must name at least one metric. Prints one line per expression
and exits 0 when all are good, 1 otherwise (2: a file that does not load).
"""
import json
import re
import sys

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on",
            "ignoring", "group_left", "group_right", "inf", "nan"}
NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def expressions(node, found):
    """Every "expr" string below a JSON node, and label_values' metrics."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                found.append(value)
            elif key == "query" and isinstance(value, str):
                m = re.match(r"\s*label_values\(\s*([^,()]+)\s*,", value)
                if m:
                    found.append(m.group(1))
            else:
                expressions(value, found)
    elif isinstance(node, list):
        for value in node:
            expressions(value, found)
    return found


def metric_names(expr):
    """The metric names an expression reads (a set)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', "", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    expr = re.sub(r"\b\d[\w.]*", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in NAME.finditer(expr):
        name, rest = m.group(0), expr[m.end():].lstrip()
        if rest.startswith("(") or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def exported(scrape):
    """Sample names of a scrape, and the families of histograms and summaries."""
    samples, families = set(), set()
    for line in scrape.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4 and parts[3] in ("histogram", "summary"):
                families.add(parts[2])
        elif line and not line.startswith("#"):
            samples.add(NAME.match(line).group(0))
    return samples, families


def known(name, samples, families):
    """Whether a name is exported, a histogram's series mapped to its family."""
    if name in samples or name in families:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in families:
            return True
    return False


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1]) as f:
            dashboard = json.load(f)
        with open(sys.argv[2]) as f:
            samples, families = exported(f.read())
    except (OSError, ValueError) as e:
        print(f"dashboard_check: {e}")
        return 2
    exprs = expressions(dashboard, [])
    if not exprs:
        print("dashboard_check: no expression in the dashboard")
        return 1
    bad = 0
    for expr in exprs:
        names = metric_names(expr)
        unknown = sorted(n for n in names if not known(n, samples, families))
        if not names or unknown:
            bad += 1
            why = "names no metric" if not names else "not exported: " + ", ".join(unknown)
            print(f"BAD {expr}: {why}")
        else:
            print(f"ok {expr}: {', '.join(sorted(names))}")
    print(f"{len(exprs)} expressions, {bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
