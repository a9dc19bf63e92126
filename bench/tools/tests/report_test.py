#!/usr/bin/env python3
"""report_generator (ctest, label bench): bench/tools/report.py on a small recorded run.

Runs report.py as the main job does (--readme, --print) on a copy of fixture/ (a real run cut
down by make_fixture.py) and checks the report against numbers this test computes itself from
the fixture's raw runs: the headline tables' rows and values (less runtime than Boehm GC beside
the paper's 13/20/36/59%, the fastest malloc, peak RSS, 1 -> 2 thread speed-up), the actor-region
(reap) sections (each rival's median ÷ Broom's, the fastest of mimalloc/jemalloc/tcmalloc named,
the footprint columns and their targets), the order of the sections, the verdicts, the context (Broom's build type, Google Benchmark's labelled as
Debian's, the load), the spread flags, and every figure as drawn (figures.json, read back from
the matplotlib objects): its panels, tick and legend labels under a length limit, no
overlapping tick labels, min-max whiskers, one colour per contender across figures. Bad input
must fail with a message and write nothing.

Exit status 77 (ctest: skipped) when python3-matplotlib is missing, after the other checks.
"""

import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
FIXTURE = os.path.join(HERE, "fixture")
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
PAPER = {"SELECT": "13%", "AGGREGATE": "20%", "JOIN": "36%"}  # HotOS 2015, vs the CLR GC
LISTS_PAPER = "59%"
MALLOCS = {"jemalloc", "glibc", "mimalloc", "tcmalloc"}
LIMITS = {"title": 80, "panel": 40, "ylabel": 30, "tick": 16, "legend": 16}
README = "# Bench\n\nprose before\n\n{begin}\nstale\n{end}\n\nprose after\n"


def run_report(results, *extra):
    args = [sys.executable, os.path.join(TOOLS, "report.py"), "--results", results, *extra]
    if not HAVE_MATPLOTLIB:
        args.append("--no-figures")
    return subprocess.run(args, capture_output=True, text=True)


def load_fixture(name):
    with open(os.path.join(FIXTURE, name + ".json")) as f:
        return json.load(f)


def stats(spec, runs):
    """median, min, max of the spec's metric and median RSS over the successful runs."""
    ok = [r for r in runs if r["status"] == 0 and r["result"]]
    values = [r["wall"] if spec["metric"] == "wall" else r["result"][spec["metric"]] for r in ok]
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rss": statistics.median(r["peak_rss_kib"] for r in ok)}


def contender(record, case, who, threads=1):
    spec = record["spec_def"]
    for c in spec["contenders"]:
        if c.get("as", c["name"]) == who and c.get("threads", 1) == threads:
            return stats(spec, case["runs"][c["name"]])
    return None


def fastest_malloc(record, case, threads=1):
    spec = record["spec_def"]
    rows = [(c.get("as", c["name"]), stats(spec, case["runs"][c["name"]]))
            for c in spec["contenders"]
            if c.get("as", c["name"]) in MALLOCS and c.get("threads", 1) == threads]
    return min(rows, key=lambda r: r[1]["median"])


def short(record, case):
    report = record["spec_def"]["report"]
    names = report.get("names", {})
    return report["short"].format(**{k: names.get(str(v), str(v))
                                     for k, v in case["params"].items()})


def section(text, number):
    """The text of the headline section `## N. ...` up to the next `## `."""
    m = re.search(rf"^## {number}\. .*?(?=^## )", text, re.S | re.M)
    assert m, f"no section {number}"
    return m.group(0)


def table_rows(text):
    """{first cell: [cells]} of the first Markdown table in text (bold marks removed)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip().replace("**", "") for c in line.strip("|").split("|")]
            rows.setdefault(cells[0], cells)
    return rows


def pct(v):
    return f"{v:.0f}%"


class Run:
    """The report made once for the whole module (setUpModule)."""


def setUpModule():
    Run.tmp = tempfile.mkdtemp(prefix="report_test_")
    Run.results = os.path.join(Run.tmp, "results")
    shutil.copytree(FIXTURE, Run.results)
    Run.readme = os.path.join(Run.tmp, "README.md")
    sys.path.insert(0, TOOLS)
    import report
    Run.markers = (report.README_BEGIN, report.README_END)
    with open(Run.readme, "w") as f:
        f.write(README.format(begin=Run.markers[0], end=Run.markers[1]))
    Run.proc = run_report(Run.results, "--readme", Run.readme, "--print")
    if Run.proc.returncode != 0:
        raise AssertionError(f"report.py failed: {Run.proc.stderr}")
    with open(os.path.join(Run.results, "summary.md")) as f:
        Run.summary = f.read()


def tearDownModule():
    shutil.rmtree(Run.tmp)


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp, cls.results, cls.readme = Run.tmp, Run.results, Run.readme
        cls.markers, cls.proc, cls.summary = Run.markers, Run.proc, Run.summary
        cls.jobs = load_fixture("dataflow_jobs")
        cls.lists = load_fixture("lists_of_lists")
        cls.scaling = load_fixture("dataflow_scaling")

    def headline_cases(self):
        """[(label, record, case, paper)] in the order the headline must list them."""
        out = []
        for job in ("select", "aggregate", "join"):
            case = next(c for c in self.jobs["cases"] if c["params"]["job"] == job)
            out.append((short(self.jobs, case), self.jobs, case, PAPER[job.upper()]))
        out += [(short(self.lists, c), self.lists, c, LISTS_PAPER) for c in self.lists["cases"]]
        return out

    def test_sections_come_in_the_order_of_the_issue(self):
        titles = ["## 1. The paper's result", "## 2. Against the fastest malloc",
                  "## 3. Peak memory", "## 4. Scaling", "## 5. Micro-benchmarks",
                  "## 6. Targets: verdicts", "## This run", "## Figures",
                  "## Details: whole programs", "## Details: micro-benchmarks"]
        positions = [self.summary.find(t) for t in titles]
        self.assertNotIn(-1, positions, dict(zip(titles, positions)))
        self.assertEqual(positions, sorted(positions))
        first_table = self.summary.index("\n|")
        self.assertGreater(first_table, positions[0], "a table comes before the headline")

    def test_headline_reproduces_the_paper_rows_against_boehm_gc(self):
        rows = table_rows(section(self.summary, 1))
        expected = self.headline_cases()
        labels = [label for label in rows if label != "workload"]
        self.assertEqual(labels[:len(expected)], [e[0] for e in expected])
        for label, record, case, paper in expected:
            b, g = contender(record, case, "broom"), contender(record, case, "boehm_gc")
            cells = rows[label]
            self.assertEqual(cells[1], paper, label)
            self.assertEqual(cells[2], pct(100 * (1 - b["median"] / g["median"])), label)
            lo, hi = sorted((100 * (1 - b["max"] / g["min"]), 100 * (1 - b["min"] / g["max"])))
            self.assertEqual(cells[3], f"{pct(lo)} to {pct(hi)}", label)
        also = [short(self.jobs, c) for c in self.jobs["cases"]
                if c["params"]["job"] in ("wjoin", "wordcount")]
        for label in also:
            self.assertEqual(rows[label][1], "—", f"{label} is not in the paper")

    def test_second_table_is_the_fastest_malloc(self):
        rows = table_rows(section(self.summary, 2))
        for label, record, case, _ in self.headline_cases():
            who, m = fastest_malloc(record, case)
            b = contender(record, case, "broom")
            self.assertEqual(rows[label][1], who, label)
            self.assertEqual(rows[label][2], pct(100 * (1 - b["median"] / m["median"])), label)

    def test_third_table_is_peak_rss_against_jemalloc(self):
        rows = table_rows(section(self.summary, 3))
        for label, record, case, _ in self.headline_cases():
            b, je = contender(record, case, "broom"), contender(record, case, "jemalloc")
            self.assertEqual(rows[label][1], f"{b['rss'] / 1024:.1f} MiB", label)
            self.assertEqual(rows[label][2], f"{b['rss'] / je['rss']:.2f}×", label)

    def test_fourth_table_is_broom_speedup_from_one_to_two_threads(self):
        rows = table_rows(section(self.summary, 4))
        head = rows["job"]
        for case in self.scaling["cases"]:
            one = contender(self.scaling, case, "broom", 1)
            two = contender(self.scaling, case, "broom", 2)
            cell = rows[short(self.scaling, case)][head.index("Broom")]
            self.assertEqual(cell.split()[0], f"{one['median'] / two['median']:.2f}×")

    def test_printed_headline_is_sections_one_to_six(self):
        start = self.summary.index("## 1. ")
        end = self.summary.index("## This run")
        self.assertEqual(self.proc.stdout.strip(), self.summary[start:end].strip())

    def test_verdicts_follow_the_numbers(self):
        rows = table_rows(section(self.summary, 6))
        for label, record, case, _ in self.headline_cases()[:3]:
            target = {"SELECT": 20, "AGGREGATE": 30, "JOIN": 50}[label]
            row = rows[f"{label}: ≥ {target}% less runtime than Boehm GC"]
            b, g = contender(record, case, "broom"), contender(record, case, "boehm_gc")
            met = 100 * (1 - b["median"] / g["median"]) >= target
            self.assertEqual(row[2], "met" if met else "missed", row)
        self.assertTrue(any(k.startswith("1 → 2 worker threads") for k in rows))
        self.assertTrue(any(k.startswith("small allocation ≤ 1.0 ns") for k in rows))

    def test_context_names_each_build_and_the_load(self):
        context = self.summary[self.summary.index("## This run"):self.summary.index("## Figures")]
        self.assertRegex(context, r"Broom \(this repository\) \| CMake build type \*\*Release\*\*")
        gbench = next(line for line in context.splitlines() if line.startswith("| Google"))
        self.assertIn("library_build_type: debug", gbench)
        self.assertIn("Debian's build of libbenchmark, not Broom's", gbench)
        with open(os.path.join(FIXTURE, "run.json")) as f:
            run = json.load(f)
        loads = [s[1] for s in run["load_samples"]]
        self.assertIn(f"{len(loads)} samples): min {min(loads):.1f}, median "
                      f"{statistics.median(loads):.1f}, max {max(loads):.1f}", context)
        self.assertIn(f"commit `{run['commit']}", self.summary.splitlines()[2])

    def test_readme_block_is_replaced_and_nothing_else(self):
        with open(self.readme) as f:
            text = f.read()
        before, rest = text.split(self.markers[0])
        block, after = rest.split(self.markers[1])
        self.assertEqual(before, "# Bench\n\nprose before\n\n")
        self.assertEqual(after, "\n\nprose after\n")
        self.assertNotIn("stale", block)
        self.assertIn("### 1. The paper's result", block)
        self.assertIn("results/summary.md", block)

    def test_a_wide_spread_is_flagged(self):
        results = os.path.join(self.tmp, "noisy")
        shutil.copytree(FIXTURE, results)
        path = os.path.join(results, "dataflow_jobs.json")
        with open(path) as f:
            data = json.load(f)
        case = next(c for c in data["cases"] if c["params"]["job"] == "select")
        broom = next(c["name"] for c in data["spec_def"]["contenders"] if c.get("as") == "broom")
        for r in case["runs"][broom][:1]:
            r["result"][data["spec_def"]["metric"]] *= 3
        with open(path, "w") as f:
            json.dump(data, f)
        proc = run_report(results, "--no-figures")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(results, "summary.md")) as f:
            rows = table_rows(section(f.read(), 1))
        self.assertIn("⚠ spread", rows[short(data, case)][-1])

    def reap_section(self, title):
        """{workload: {column: cell}} of the report's section `## <title>`."""
        m = re.search(rf"^## {re.escape(title)}\n.*?(?=^## )", self.summary, re.S | re.M)
        self.assertTrue(m, f"no section {title}")
        lines = [line for line in m.group(0).splitlines() if line.startswith("| ")]
        head = [c.strip() for c in lines[0].strip("|").split("|")]
        rows = {}
        for line in lines[1:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = dict(zip(head, cells))
        return rows

    def test_reap_section_gives_each_rival_over_broom(self):
        rows = self.reap_section("Actor regions (reap): per-object free against the mallocs")
        group = "fastest of mimalloc/jemalloc/tcmalloc ÷ Broom"
        for name in ("reap_batch", "reap_pairs", "reap_pmr"):
            record = load_fixture(name)
            for case in record["cases"]:
                b = contender(record, case, "broom")
                fastest = min(("mimalloc", "jemalloc", "tcmalloc"),
                              key=lambda w: contender(record, case, w)["median"])
                r = contender(record, case, fastest)
                cells = rows[short(record, case)]
                self.assertEqual(cells[group], f"{r['median'] / b['median']:.2f}× ({fastest})")
                pool = contender(record, case, "pmr_pool")
                self.assertEqual(cells["pmr pool ÷ Broom"], f"{pool['median'] / b['median']:.2f}×")
                wide = r["min"] / b["max"] < 1 < r["max"] / b["min"]
                self.assertEqual("ranges overlap" in cells["note"], wide, cells)

    def test_reap_footprint_and_its_targets(self):
        record = load_fixture("reap_footprint")
        case = record["cases"][0]
        runs = [r["result"] for r in case["runs"]["broom"] if r["status"] == 0]
        tiny = statistics.median(r["tiny_bytes"] for r in runs)
        over = statistics.median(r["heap_over_live"] for r in runs)
        rows = self.reap_section("Actor regions (reap): footprint")
        cells = rows[short(record, case)]
        self.assertEqual(cells["9 objects: block bytes"], f"{tiny:,.0f} B")
        self.assertEqual(cells["peak blocks ÷ peak live"], f"{over:.2f}×")
        self.assertNotIn("RSS ÷ jemalloc", cells)
        verdicts = table_rows(section(self.summary, 6))
        tiny_row = verdicts["reap footprint: 9 objects of 9 size classes in ≤ 16 KiB of blocks"]
        self.assertEqual(tiny_row[2], "met" if tiny <= 16384 else "missed")
        shift = verdicts["reap footprint, shifting size mix: peak block bytes ≤ 1.25× peak live "
                         "bytes"]
        self.assertEqual(shift[2], "met" if over <= 1.25 else "missed")
        aim = next(v for k, v in verdicts.items() if k.startswith("reap, every row above"))
        self.assertRegex(aim[1], r"; \d+ of \d+ met")

    def test_missing_micro_results_say_not_run(self):
        results = os.path.join(self.tmp, "no_micro")
        shutil.copytree(FIXTURE, results)
        for name in os.listdir(results):
            if name.startswith("micro"):
                os.unlink(os.path.join(results, name))
        proc = run_report(results, "--no-figures")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(results, "summary.md")) as f:
            text = f.read()
        self.assertIn("Not run in this run.", section(text, 5))
        self.assertIn("not measured in this run", section(text, 6))

    def test_bad_input_fails_with_a_message_and_writes_nothing(self):
        empty = os.path.join(self.tmp, "empty")
        os.makedirs(empty)
        proc = run_report(empty)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("no benchmark results", proc.stderr)
        self.assertEqual(os.listdir(empty), [])
        broken = os.path.join(self.tmp, "broken")
        shutil.copytree(FIXTURE, broken)
        with open(os.path.join(broken, "churn.json"), "w") as f:
            f.write("{ not json")
        proc = run_report(broken)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("churn.json", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(broken, "summary.md")))
        no_markers = os.path.join(self.tmp, "plain.md")
        with open(no_markers, "w") as f:
            f.write("# no markers\n")
        results = os.path.join(self.tmp, "for_plain")
        shutil.copytree(FIXTURE, results)
        proc = run_report(results, "--readme", no_markers)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("markers", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(results, "summary.md")))
        with open(no_markers) as f:
            self.assertEqual(f.read(), "# no markers\n")


@unittest.skipUnless(HAVE_MATPLOTLIB, "python3-matplotlib is missing")
class FiguresTest(unittest.TestCase):
    PANELS = {"fig_paper": 1, "fig_time": 2, "fig_rss": 2, "fig_scaling": 1, "fig_micro": 2,
              "fig_reap": 2}

    @classmethod
    def setUpClass(cls):
        cls.results = Run.results
        with open(os.path.join(cls.results, "figures.json")) as f:
            cls.figures = json.load(f)

    def test_every_figure_is_drawn_with_its_panels(self):
        self.assertEqual(sorted(self.figures), sorted(self.PANELS))
        for name, fig in self.figures.items():
            with open(os.path.join(self.results, fig["file"]), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
            self.assertEqual(len(fig["panels"]), self.PANELS[name], name)
            self.assertIn(f"![{fig['title']}]({fig['file']})", Run.summary)

    def test_labels_are_short_and_legible(self):
        for name, fig in self.figures.items():
            self.assertTrue(0 < len(fig["title"]) <= LIMITS["title"], (name, fig["title"]))
            self.assertGreaterEqual(fig["min_font_size"], 8, name)
            self.assertLessEqual(fig["size_px"][0], 1600, name)
            for label in fig["legend"]:
                self.assertLessEqual(len(label), LIMITS["legend"], (name, label))
            for panel in fig["panels"]:
                self.assertLessEqual(len(panel["title"]), LIMITS["panel"], (name, panel))
                self.assertLessEqual(len(panel["ylabel"]), LIMITS["ylabel"], (name, panel))
                self.assertTrue(panel["xticks"], (name, panel))
                for tick in panel["xticks"]:
                    self.assertTrue(0 < len(tick) <= LIMITS["tick"], (name, tick))
                self.assertEqual(panel["tick_overlaps"], 0, (name, panel["xticks"]))
            self.assertTrue(fig["panels"][0]["ylabel"], name)

    def test_bars_have_min_max_whiskers(self):
        for name, fig in self.figures.items():
            for panel in fig["panels"]:
                self.assertGreater(panel["bars"], 0, (name, panel["title"]))
                self.assertGreater(panel["whiskers"], 0, (name, panel["title"]))

    def test_one_colour_per_contender_across_figures(self):
        colours = {}
        for name, fig in self.figures.items():
            for label, colour in fig["legend"].items():
                colours.setdefault(label, set()).add(colour)
        for label, seen in colours.items():
            self.assertEqual(len(seen), 1, (label, seen))
        # The paper figure's "now" bars are Broom's, in Broom's colour.
        self.assertEqual(colours.pop("now (Boehm GC)"), colours["Broom"])
        by_colour = {}
        for label, seen in colours.items():
            by_colour.setdefault(next(iter(seen)), []).append(label)
        shared = {c: ls for c, ls in by_colour.items() if len(ls) > 1
                  and not all(label.startswith("target ") for label in ls)}
        self.assertEqual(shared, {}, "two contenders share a colour")

    def test_figures_show_the_headline_workloads(self):
        ticks = self.figures["fig_paper"]["panels"][0]["xticks"]
        jobs = load_fixture("dataflow_jobs")
        lists = load_fixture("lists_of_lists")
        want = [short(jobs, c) for c in jobs["cases"]
                if c["params"]["job"] in ("select", "aggregate", "join")]
        self.assertEqual(ticks, want + [short(lists, c) for c in lists["cases"]])
        self.assertEqual(set(self.figures["fig_paper"]["legend"]),
                         {"paper (CLR GC)", "now (Boehm GC)"})
        time_ticks = self.figures["fig_time"]["panels"][0]["xticks"]
        self.assertEqual(time_ticks, [short(jobs, c) for c in jobs["cases"]])
        self.assertIn("Broom", self.figures["fig_scaling"]["legend"])
        self.assertIn("bump floor", self.figures["fig_micro"]["legend"])


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if not HAVE_MATPLOTLIB:
        print("report_test: figures not checked: python3-matplotlib is missing "
              "(scripts/install-deps.sh installs it)", file=sys.stderr)
        sys.exit(77)
    sys.exit(0)
