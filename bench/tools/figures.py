"""Draws the report's bar figures with matplotlib and reads back what was drawn.

A figure is described as data (report.py builds the descriptions):

  {"title": "...", "ylabel": "...", "log": False,
   "lines": [{"y": 1.0, "label": "Broom", "style": "solid"}],       # horizontal references
   "panels": [{"title": "...", "groups": ["SELECT", "JOIN"],          # x tick labels
               "series": [{"key": "broom", "label": "Broom", "color": "#1f4e9c",
                           "values": [1.0, 1.0], "lo": [0.97, 0.98], "hi": [1.02, 1.05],
                           "annotate": False}]}]}

Each series is one colour (the caller fixes a colour per contender across figures), drawn as
bars grouped by tick label, with min-max whiskers where lo/hi are given; missing values (None)
leave a gap. One legend for the whole figure, below the panels, so it never covers a bar.

draw(description, path) saves a PNG and returns what the figure really holds, read from the
matplotlib objects after drawing: per panel its title, axis labels, tick labels, legend labels
and colours, the smallest font size, and how many tick labels overlap their neighbour.
Importing this module imports matplotlib (Agg backend); callers catch ImportError.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

PANEL_WIDTH = 5.6  # inches per panel, at least
GROUP_WIDTH = 1.4  # inches per group of bars, at least
LEGEND_ENTRY_WIDTH = 1.55  # inches per legend column
LEGEND_COLUMNS = 7
HEIGHT = 4.4
DPI = 100


def _bars(ax, panel, log):
    series = [s for s in panel["series"] if any(v is not None for v in s["values"])]
    groups = panel["groups"]
    width = 0.8 / max(1, len(series))
    for i, s in enumerate(series):
        xs, ys, err_lo, err_hi = [], [], [], []
        for j, v in enumerate(s["values"]):
            if v is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(v)
            lo = (s.get("lo") or [None] * len(groups))[j]
            hi = (s.get("hi") or [None] * len(groups))[j]
            err_lo.append(max(0.0, v - lo) if lo is not None else 0.0)
            err_hi.append(max(0.0, hi - v) if hi is not None else 0.0)
        has_err = any(err_lo) or any(err_hi)
        bars = ax.bar(xs, ys, width * 0.92, color=s["color"], label=s["label"],
                      hatch=s.get("hatch"), edgecolor="white" if s.get("hatch") else None,
                      yerr=[err_lo, err_hi] if has_err else None,
                      error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "#222222"})
        if s.get("annotate"):
            ax.bar_label(bars, labels=[f"{y:.0f}" for y in ys], fontsize=8, padding=2)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    if log:
        ax.set_yscale("log")
        low = min((v for s in series for v in s["values"] if v), default=1)
        ax.set_ylim(bottom=min(low, 1) * 0.6)  # bars start below the lowest value
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_title(panel["title"], fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def draw(description, path):
    panels = description["panels"]
    entries = len({s["label"] for p in panels for s in p["series"]}) + len(
        [line for line in description.get("lines", []) if line.get("label")])
    # A panel of many groups gets GROUP_WIDTH per group, so its tick labels do not collide.
    widths = [max(PANEL_WIDTH, GROUP_WIDTH * len(p["groups"])) for p in panels]
    width = max(sum(widths) + 0.6, LEGEND_ENTRY_WIDTH * min(LEGEND_COLUMNS, entries))
    fig, axes = plt.subplots(1, len(panels), figsize=(width, HEIGHT), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    axes = axes[0]
    for ax, panel in zip(axes, panels):
        _bars(ax, panel, description.get("log", False))
        for line in description.get("lines", []):
            ax.axhline(line["y"], color=line.get("color", "#444444"), linewidth=1,
                       linestyle=line.get("style", "solid"), label=line.get("label"))
    axes[0].set_ylabel(description["ylabel"])
    handles, labels = {}, []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = h
                labels.append(label)
    fig.suptitle(description["title"], fontsize=12)
    rows = (len(labels) + LEGEND_COLUMNS - 1) // LEGEND_COLUMNS
    fig.legend([handles[label] for label in labels], labels, loc="lower center",
               ncol=min(LEGEND_COLUMNS, len(labels)), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07 * rows + 0.02, 1, 1))
    fig.savefig(path, dpi=DPI)
    seen = describe(fig)
    plt.close(fig)
    return seen


def _overlaps(ax, renderer):
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
    return sum(1 for a, b in zip(boxes, boxes[1:]) if a.x1 > b.x0)


def describe(fig):
    """What a drawn figure holds: suptitle, legend entries with colours, and per panel its
    title, axis labels, tick labels, bars, whisker segments, tick-label overlaps; the smallest
    font size used."""
    renderer = fig.canvas.get_renderer()
    legend = {}
    for leg in fig.legends:
        for text, handle in zip(leg.get_texts(), leg.legend_handles
                                if hasattr(leg, "legend_handles") else leg.legendHandles):
            if hasattr(handle, "get_facecolor"):
                color = handle.get_facecolor()
            else:
                color = handle.get_color() if hasattr(handle, "get_color") else None
            legend[text.get_text()] = to_hex(color) if color is not None else None
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text() and t.get_visible()]
    panels = []
    for ax in fig.axes:
        panels.append({"title": ax.get_title(), "xlabel": ax.get_xlabel(),
                       "ylabel": ax.get_ylabel(),
                       "xticks": [t.get_text() for t in ax.get_xticklabels()],
                       "bars": len(ax.patches),
                       "whiskers": sum(len(c.get_segments()) for c in ax.collections
                                       if isinstance(c, LineCollection)),
                       "tick_overlaps": _overlaps(ax, renderer)})
    width, height = fig.get_size_inches() * fig.dpi
    return {"title": fig._suptitle.get_text() if fig._suptitle else "",
            "size_px": [round(width), round(height)], "legend": legend, "panels": panels,
            "min_font_size": min(t.get_fontsize() for t in texts) if texts else None}
