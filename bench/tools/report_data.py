"""The report's data: the run's results loaded, per-case statistics, measures and verdicts.

report.py renders what this module computes. Report.load(results_dir, config) reads every
sidebyside.py record (Program, Case: one case's per-contender statistics, contenders found by
their canonical identity), the Google Benchmark files (format_micro.load_all) and run.json;
its measures return a Value (median-based value, min-max range, worst spread, the rival it was
measured against): reduction (% less runtime than a rival), speed_ratio (a rival's median ÷
Broom's), rss_ratio, speedup (1 -> 2 threads), extra (a RESULT key), and micro_values for micro
scenarios. A rival is a canonical contender, "fastest_malloc", or a list of canonical contenders
(the fastest of them). verdicts() evaluates the targets of report.json (see its _doc). Errors
in the input raise ReportError.
"""

import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import format_micro as fm  # noqa: E402
import sidebyside as sbs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UNITS = {"reduction": "%", "ratio": "×", "speed_ratio": "×", "rss_ratio": "×", "speedup": "×",
         "ns": "ns", "counter": "", "extra": ""}
# 1-minute load per CPU up to which a run is called quiet / busy; above: overloaded.
LOAD_QUIET, LOAD_BUSY = 1.0, 2.0
LOAD_WORDS = {"quiet": "quiet: the benchmarks had the CPUs to themselves",
              "busy": "busy: other processes shared the CPUs at times",
              "overloaded": "overloaded: other processes competed for the CPUs throughout; "
                            "ratios measured side by side still compare like with like, "
                            "absolute times and spreads are inflated"}


class ReportError(Exception):
    pass


class Value:
    """A measured quantity: median-based value, min-max range, worst spread, who it was
    measured against."""

    def __init__(self, v, lo=None, hi=None, spread=None, rival=None):
        self.v, self.lo, self.hi, self.spread, self.rival = v, lo, hi, spread, rival


def matches(params, where):
    for key, want in (where or {}).items():
        have = str(params.get(key))
        if have not in ([str(w) for w in want] if isinstance(want, list) else [str(want)]):
            return False
    return True


def rss_spread(row):
    return (row["rss_max"] - row["rss_min"]) / row["rss"] if row["rss"] else None


def worst(*spreads):
    spreads = [s for s in spreads if s is not None]
    return max(spreads) if spreads else None


class Case:
    """One case of a sidebyside record, with per-contender statistics."""

    def __init__(self, program, case):
        self.program, self.params, self.label = program, case["params"], case["label"]
        self.short = sbs.short_label(program.spec, self.params)
        self.rows = sbs.case_stats(program.spec, case)
        self.load = sbs.case_load(case)

    def find(self, who, threads=1):
        """(contender, row) for a canonical contender; 'fastest_malloc' is the contender of
        kind malloc (report.json) with the lowest median, a list of canonical contenders the
        one of them with the lowest median. (None, None) if absent or failed."""
        spec, kinds = self.program.spec, self.program.kinds
        candidates = [(n, r) for n, r in self.rows.items()
                      if r is not None and sbs.threads_of(spec, n) == threads]
        if who == "fastest_malloc" or isinstance(who, list):
            pool = [(n, r) for n, r in candidates
                    if (sbs.canonical(spec, n) in who if isinstance(who, list)
                        else kinds.get(sbs.canonical(spec, n)) == "malloc")]
            return min(pool, key=lambda nr: nr[1]["median"]) if pool else (None, None)
        return next(((n, r) for n, r in candidates if sbs.canonical(spec, n) == who),
                    (None, None))


class Program:
    """One sidebyside record; `kinds` (canonical contender -> kind) is set by Report."""

    def __init__(self, record, spec):
        self.record, self.spec, self.name, self.kinds = record, spec, spec["name"], {}
        self.unit = spec.get("metric_label", spec["metric"])
        self.cases = [Case(self, c) for c in record["cases"]]


class Report:
    """Everything one run measured. Use load(results, config) to read a results directory."""

    def __init__(self, config, programs, micro=None, micro_contexts=None, run=None):
        self.config, self.programs, self.run = config, programs, run
        self.micro, self.micro_contexts = micro or {}, micro_contexts or {}
        self.contenders = config.get("contenders", {})
        self.kinds = {k: v.get("kind") for k, v in self.contenders.items()}
        for program in programs.values():
            program.kinds = self.kinds

    @classmethod
    def load(cls, results, config):
        """Reads run.json, every sidebyside record and micro*.json in `results`."""
        run = cls._load_json(os.path.join(results, "run.json"), required=False)
        programs = {}
        for path in sorted(glob.glob(os.path.join(results, "*.json"))):
            data = cls._load_json(path)
            if isinstance(data, dict) and "cases" in data and "spec" in data:
                spec = data.get("spec_def") or cls._load_json(
                    os.path.join(HERE, "specs", data["spec"] + ".json"))
                programs[spec["name"]] = Program(data, spec)
        micro = sorted(glob.glob(os.path.join(results, "micro*.json")))
        table, contexts = fm.load_all(micro) if micro else ({}, {})
        if not programs and not table:
            raise ReportError(f"no benchmark results in {results} (expected sidebyside.py "
                              "records and micro*.json)")
        return cls(config, programs, table, contexts, run)

    @staticmethod
    def _load_json(path, required=True):
        if not os.path.exists(path) and not required:
            return None
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise ReportError(f"cannot read {path}: {e}") from e

    def cpus(self):
        if self.run and self.run.get("machine", {}).get("cpus"):
            return self.run["machine"]["cpus"]
        return next((p.record["machine"]["cpus"] for p in self.programs.values()),
                    next((c.get("num_cpus") for c in self.micro_contexts.values()), None))

    def load_average(self):
        """1-minute load average during the run: {min, median, max, n, source, verdict},
        from run.json's samples, else the per-run samples of the records, else the micro
        files' contexts; None if nothing was sampled."""
        samples, source = [], ""
        if self.run and self.run.get("load_samples"):
            samples, source = [s[1] for s in self.run["load_samples"]], "sampled every few s"
        if not samples:
            samples = [r["load1"] for p in self.programs.values() for c in p.record["cases"]
                       for runs in c["runs"].values() for r in runs if "load1" in r]
            source = "sampled after each whole-program run"
        if not samples:
            samples = [c["load_avg"][0] for c in self.micro_contexts.values()
                       if c.get("load_avg")]
            source = "at the start of each micro-benchmark binary"
        if not samples:
            return None
        mid, cpus = statistics.median(samples), self.cpus() or 1
        verdict = ("quiet" if mid / cpus <= LOAD_QUIET else
                   "busy" if mid / cpus <= LOAD_BUSY else "overloaded")
        return {"min": min(samples), "median": mid, "max": max(samples), "n": len(samples),
                "source": source, "verdict": verdict, "cpus": cpus}

    # ---- naming ----
    def label(self, who):
        if isinstance(who, list):
            return "fastest of " + "/".join(self.label(w) for w in who)
        return self.contenders.get(who, {}).get("label", who)

    def color(self, who):
        if who in self.contenders:
            return self.contenders[who]["color"]
        palette = ["#7f7f7f", "#bcbd22", "#aec7e8", "#ffbb78", "#c5b0d5", "#c49c94"]
        return palette[sum(map(ord, who)) % len(palette)]  # stable across figures and runs

    def micro_as(self, contender):
        return self.config.get("micro_as", {}).get(contender, contender)

    def micro_short(self, scenario, template=None):
        family = fm.family_of(scenario)
        info = template or self.config.get("micro_short", {}).get(family)
        if not info:
            return f"{family} {fm.scenario_label(scenario)}"
        spec = {"report": info}
        return sbs.short_label(spec, fm.scenario_params(scenario))

    def micro_rows(self, family, where=None):
        rows = {s: r for s, r in self.micro.items() if fm.family_of(s) == family
                and matches(fm.scenario_params(s), where)}
        return {s: rows[s] for s in sorted(rows, key=fm.scenario_key)}

    # ---- program measures ----
    def cases(self, spec, where=None):
        program = self.programs.get(spec)
        return [c for c in program.cases if matches(c.params, where)] if program else []

    def reduction(self, case, vs, threads=1):
        _, b = case.find("broom", threads)
        name, r = case.find(vs, threads)
        if not b or not r or r["median"] <= 0:
            return None
        return Value(100 * (1 - b["median"] / r["median"]), 100 * (1 - b["max"] / r["min"]),
                     100 * (1 - b["min"] / r["max"]), worst(sbs.spread(b), sbs.spread(r)),
                     sbs.canonical(case.program.spec, name))

    def speed_ratio(self, case, vs):
        """The rival's median ÷ Broom's (above 1: Broom takes less of the spec's metric)."""
        _, b = case.find("broom")
        name, r = case.find(vs)
        if not b or not r or b["median"] <= 0 or b["min"] <= 0:
            return None
        return Value(r["median"] / b["median"], r["min"] / b["max"], r["max"] / b["min"],
                     worst(sbs.spread(b), sbs.spread(r)), sbs.canonical(case.program.spec, name))

    def rss_ratio(self, case, vs, who="broom"):
        _, b = case.find(who)
        name, r = case.find(vs, 1)
        if not b or not r or not r["rss"]:
            return None
        return Value(b["rss"] / r["rss"], b["rss_min"] / r["rss_max"],
                     b["rss_max"] / r["rss_min"], worst(rss_spread(b), rss_spread(r)),
                     sbs.canonical(case.program.spec, name))

    def speedup(self, case, who):
        _, one = case.find(who)
        _, two = case.find(who, 2)
        if not one or not two or not two["median"]:
            return None
        return Value(one["median"] / two["median"], one["min"] / two["max"],
                     one["max"] / two["min"], worst(sbs.spread(one), sbs.spread(two)))

    def extra(self, case, key, who):
        _, row = case.find(who)
        return Value(row[key]) if row and row.get(key) is not None else None

    # ---- micro measures ----
    def micro_values(self, target, row):
        """[(who, Value)] of a micro target on one scenario row."""
        def listed(x):
            return x if isinstance(x, list) else [x]

        measure, out = target["measure"], []
        if measure == "ns":
            for c in listed(target["of"]):
                if c in row:
                    r = row[c]
                    out.append((c, Value(r.ns, r.lo, r.hi, r.spread)))
        elif measure == "counter":
            for c in listed(target["of"]):
                keys = [k for k in listed(target["counter"]) if c in row and k in row[c].counters]
                if keys:
                    out.append((c, Value(row[c].counters[keys[0]])))
        elif measure == "ratio":
            if "num_fastest" in target:
                present = [c for c in target["num_fastest"] if c in row]
                nums = [min(present, key=lambda c: row[c].ns)] if present else []
            else:
                nums = [c for c in listed(target["num"]) if c in row]
            for n in nums:
                for d in (c for c in listed(target["den"]) if c in row and row[c].ns > 0):
                    a, b = row[n], row[d]
                    lo = a.lo / b.hi if a.lo is not None and b.hi else None
                    hi = a.hi / b.lo if a.hi is not None and b.lo else None
                    out.append((f"{n} ÷ {d}", Value(a.ns / b.ns, lo, hi,
                                                    worst(a.spread, b.spread))))
        else:
            raise ReportError(f"target {target.get('id')}: unknown micro measure {measure!r}")
        return out

    # ---- targets ----
    def target_items(self, target):
        """[(row label, who, Value)] and the labels of rows excluded by skip_if_floor_above."""
        items, excluded = [], []
        measure = target["measure"]
        if "spec" in target:
            specs = target["spec"] if isinstance(target["spec"], list) else [target["spec"]]
            for case in (c for s in specs for c in self.cases(s, target.get("where"))):
                if measure == "reduction":
                    v = self.reduction(case, target["vs"])
                elif measure == "speed_ratio":
                    v = self.speed_ratio(case, target["vs"])
                elif measure == "rss_ratio":
                    v = self.rss_ratio(case, target["vs"])
                elif measure == "speedup":
                    v = self.speedup(case, target["of"])
                elif measure == "extra":
                    v = self.extra(case, target["key"], target["of"])
                else:
                    raise ReportError(f"target {target.get('id')}: unknown measure {measure!r}")
                if v is not None:
                    items.append((case.short, self.label(v.rival) if v.rival else "", v))
        else:
            for scenario, row in self.micro_rows(target["family"], target.get("where")).items():
                floor = row.get("bump_floor")
                limit = target.get("skip_if_floor_above")
                if limit is not None and floor is not None and floor.ns > limit:
                    excluded.append(f"{self.micro_short(scenario)} (floor {fm.fmt_ns(floor.ns)})")
                    continue
                for who, v in self.micro_values(target, row):
                    items.append((self.micro_short(scenario), who, v))
        return items, excluded

    def verdicts(self, headline_only):
        rows = []
        for target in self.config.get("targets", []):
            if headline_only and not target.get("headline", True):
                continue
            items, excluded = self.target_items(target)
            groups = ({label: [i for i in items if i[0] == label] for label, _, _ in items}
                      if target.get("per_case") else {"": items})
            if not items:
                rows.append({"target": target["text"], "measured": "not measured in this run",
                             "met": None, "margin": "", "note": ""})
                continue
            for label, group in groups.items():
                rows.append(self.verdict(target, label, group, excluded))
        return rows

    def verdict(self, target, label, items, excluded):
        unit = target.get("unit", UNITS[target["measure"]])
        if "min" in target:
            limit, passes = target["min"], lambda v: v >= target["min"]
            where, who, value = min(items, key=lambda i: i[2].v)
        else:
            limit, passes = target["max"], lambda v: v <= target["max"]
            where, who, value = max(items, key=lambda i: i[2].v)
        met = passes(value.v)
        alternatives = target.get("vs") == "fastest_malloc" or "num_fastest" in target or any(
            isinstance(target.get(k), list) for k in ("of", "num", "den", "vs"))
        context = "; ".join(x for x in [where if len(items) > 1 and not label else "",
                                        who if alternatives else ""] if x)
        shown = fmt_value(value.v, unit)
        if shown == fmt_value(limit, unit) and (value.v != limit):
            shown = f"{value.v:.4g}{unit if unit in ('%', '×') else ' ' + unit}"
        measured = shown + (f" ({context})" if context else "")
        if len(items) > 1:
            measured += f"; {sum(passes(i[2].v) for i in items)} of {len(items)} met"
        if excluded:
            measured += "; not counted: " + ", ".join(excluded)
        notes = []
        if value.spread is not None and value.spread > sbs.SPREAD_LIMIT:
            notes.append(f"⚠ spread {value.spread * 100:.0f}%")
        if value.lo is not None and value.hi is not None and \
                min(value.lo, value.hi) < limit < max(value.lo, value.hi):
            notes.append(f"⚠ min–max {fmt_value(min(value.lo, value.hi), unit)} to "
                         f"{fmt_value(max(value.lo, value.hi), unit)} straddles the target")
        return {"target": target["text"] + (f" — {label}" if label else ""),
                "measured": measured, "met": met, "margin": margin(value.v, target, unit),
                "note": "; ".join(notes)}


def fmt_value(v, unit):
    if v is None:
        return "—"
    if unit == "%":
        return f"{v:.0f}%"
    if unit == "×":
        return fm.fmt_ratio(v)
    if unit == "ns":
        return fm.fmt_ns(v) + " ns"
    if unit == "B":
        return f"{v:,.0f} B"
    return sbs.fmt(v)


def margin(v, target, unit):
    """By how much a target is met or missed: points for percentages, else relative."""
    def amount(d):
        d = abs(d)  # never "-0"
        return f"{d:.0f}" if d >= 1 or d == 0 else f"{d:.1g}"

    if unit == "%":
        d = v - target["min"] if "min" in target else target["max"] - v
        return (f"{amount(d)} pts to spare" if d >= 0 else f"short by {amount(-d)} pts")
    if "min" in target:
        if target["min"] == 0:
            return ""
        d = (v / target["min"] - 1) * 100
        return f"{amount(d)}% above" if d >= 0 else f"{amount(-d)}% short"
    d = (v / target["max"] - 1) * 100
    return f"{amount(-d)}% under" if d <= 0 else f"{amount(d)}% over"


def note(value, cross=None):
    """Trust flags for a table row: too wide a spread, or a range that crosses `cross`."""
    if value is None:
        return ""
    out = []
    if value.spread is not None and value.spread > sbs.SPREAD_LIMIT:
        out.append(f"⚠ spread {value.spread * 100:.0f}%")
    if cross is not None and value.lo is not None and value.hi is not None and \
            min(value.lo, value.hi) < cross < max(value.lo, value.hi):
        out.append("⚠ ranges overlap")
    return "; ".join(out)


def table(head, rows):
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows] + [""])


def median_cell(row, unit):
    return f"{sbs.fmt(row['median'])} {unit}" if row else "—"
