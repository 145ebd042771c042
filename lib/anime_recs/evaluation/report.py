"""Charts (matplotlib, Agg) and a short markdown report of the ``evaluation`` table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import BinaryIO, TypeVar

import pandas as pd

log = logging.getLogger(__name__)

# where a chart is saved as PNG: a file path, or a binary file (the report page's bytes)
Target = TypeVar("Target", Path, BinaryIO)

NPS_CHART = "nps_by_n.png"
PRECISION_CHART = "precision_{view}.png"
UNIQUE_CHART = "unique_anime.png"
REPORT = "evaluation.md"
TABLE_CSV = "evaluation.csv"
# the columns of the report's tables (all of them are in evaluation.csv)
REPORT_COLUMNS = [
    "recommender",
    "n",
    "precision",
    "precision_ci_low",
    "precision_ci_high",
    "nps",
    "nps_ci_low",
    "nps_ci_high",
    "net_promoter_hits",
    "promoter_share",
    "recall",
    "cold_share",
    "users_total",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_with_ci(
    evaluation: pd.DataFrame, metric: str, ylabel: str, title: str, path: Target
) -> Target:
    """``metric`` vs list length N per recommender, its bootstrap CI (``<metric>_ci_low``,
    ``<metric>_ci_high``) as a band, saved as PNG into ``path``; returns it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, rows in evaluation.sort_values("n").groupby("recommender", sort=True):
        line = ax.plot(rows["n"], rows[metric], marker="o", label=name)[0]
        if rows[f"{metric}_ci_low"].notna().any():
            ax.fill_between(
                rows["n"],
                rows[f"{metric}_ci_low"],
                rows[f"{metric}_ci_high"],
                alpha=0.2,
                color=line.get_color(),
            )
    if metric == "nps":
        ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("N (recommendations per user)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xticks(sorted(evaluation["n"].unique()))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
    return path


def plot_nps(evaluation: pd.DataFrame, path: Target) -> Target:
    """NPS vs list length N per recommender, with its bootstrap CI."""
    return plot_with_ci(
        evaluation,
        "nps",
        "NPS (mean weighted points per hit)",
        "NPS@N by recommender (95% bootstrap CI over users)",
        path,
    )


def plot_precision(evaluation: pd.DataFrame, view: str, path: Target) -> Target:
    """Precision@N per recommender in one view, with its bootstrap CI."""
    return plot_with_ci(
        evaluation,
        "precision",
        "precision@N (liked titles, 9-10, per slot)",
        f"precision@N, {view} titles (95% bootstrap CI over users)",
        path,
    )


def plot_unique(evaluation: pd.DataFrame, path: Path) -> Path:
    """Distinct titles recommended across users, per recommender, at the largest N."""
    plt = _pyplot()
    n_max = int(evaluation["n"].max())
    rows = evaluation[evaluation["n"] == n_max].sort_values("recommender")
    fig, ax = plt.subplots(figsize=(8, 5))
    bars = ax.bar(rows["recommender"], rows["unique_anime"])
    ax.bar_label(bars)
    ax.set_ylabel("distinct titles recommended")
    ax.set_title(f"Unique titles recommended across users at N = {n_max}")
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
    return path


VIEW_TITLES = {
    "warm": "Warm titles (ranked among and scored on titles with train ratings)",
    "cold": "Cold titles (the newest titles, no train rating: ranked among and scored on them)",
    "all": "Lists as made (every title, every test rating; cold_share = slots on cold titles)",
}


def markdown_report(evaluation: pd.DataFrame, params: dict, charts: list[str]) -> str:
    """A short markdown report: parameters, one table per view, links to the charts."""
    lines = ["# Recommendation evaluation", "", "## Parameters", ""]
    lines += [f"- {key}: {value}" for key, value in sorted(params.items())]
    for view, title in VIEW_TITLES.items():
        table = evaluation[evaluation["view"] == view].sort_values(["recommender", "n"])
        if table.empty:
            continue
        lines += ["", f"## {title}", "", _markdown_table(table[REPORT_COLUMNS]), ""]
    lines += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    return "\n".join(lines)


def _markdown_table(frame: pd.DataFrame) -> str:
    def fmt(value) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{round(value, 4) + 0.0:.4f}"  # no "-0.0000"
        return str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def write_report(evaluation: pd.DataFrame, folder: str | Path, params: dict) -> list[Path]:
    """Write the charts, the markdown report and the table as CSV into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    charts = [plot_nps(evaluation[evaluation["view"] == "all"], folder / NPS_CHART)]
    for view in ("warm", "cold"):
        rows = evaluation[evaluation["view"] == view]
        if not rows.empty:
            path = folder / PRECISION_CHART.format(view=view)
            charts.append(plot_precision(rows, view, path))
    charts.append(plot_unique(evaluation[evaluation["view"] == "all"], folder / UNIQUE_CHART))
    report = folder / REPORT
    report.write_text(markdown_report(evaluation, params, [c.name for c in charts]))
    table = folder / TABLE_CSV
    evaluation.to_csv(table, index=False)
    log.info("report written to %s", folder)
    return [*charts, report, table]
