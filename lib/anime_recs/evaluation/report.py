"""Charts (matplotlib, Agg) and a short markdown report of the ``evaluation`` table."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

NPS_CHART = "nps_by_n.png"
UNIQUE_CHART = "unique_anime.png"
REPORT = "evaluation.md"
COLD_START_CSV = "cold_start_evaluation.csv"
TABLE_CSV = "evaluation.csv"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_nps(evaluation: pd.DataFrame, path: Path) -> Path:
    """NPS vs list length N per recommender, with the bootstrap CI as a band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, rows in evaluation.sort_values("n").groupby("recommender", sort=True):
        line = ax.plot(rows["n"], rows["nps"], marker="o", label=name)[0]
        if rows["nps_ci_low"].notna().any():
            ax.fill_between(
                rows["n"],
                rows["nps_ci_low"],
                rows["nps_ci_high"],
                alpha=0.2,
                color=line.get_color(),
            )
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("N (recommendations per user)")
    ax.set_ylabel("NPS (mean weighted points per hit)")
    ax.set_title("NPS@N by recommender (95% bootstrap CI over users)")
    ax.set_xticks(sorted(evaluation["n"].unique()))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown_report(
    evaluation: pd.DataFrame,
    params: dict,
    charts: list[str],
    cold_start: pd.DataFrame | None = None,
) -> str:
    """A short markdown report: parameters, the evaluation table, the cold-start table, links
    to the charts."""
    table = evaluation.sort_values(["recommender", "n"])
    lines = ["# Recommendation evaluation", "", "## Parameters", ""]
    lines += [f"- {key}: {value}" for key, value in sorted(params.items())]
    n_max = int(table["n"].max()) if not table.empty else 0
    best = table[table["n"] == n_max].sort_values("nps", ascending=False)
    if not best.empty:
        top = best.iloc[0]
        lines += [
            "",
            f"At N = {n_max} the highest pooled NPS is {top['recommender']} "
            f"({top['nps']:.4f}, 95% CI {top['nps_ci_low']:.4f} to {top['nps_ci_high']:.4f}).",
        ]
    lines += ["", "## Evaluation table", "", _markdown_table(table), ""]
    if cold_start is not None and not cold_start.empty:
        cold = cold_start.sort_values(["recommender", "n"])
        lines += ["## Cold-start titles (no train rating)", "", _markdown_table(cold), ""]
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


def write_report(
    evaluation: pd.DataFrame,
    folder: str | Path,
    params: dict,
    cold_start: pd.DataFrame | None = None,
) -> list[Path]:
    """Write both charts, the markdown report and the table(s) as CSV into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    charts = [
        plot_nps(evaluation, folder / NPS_CHART),
        plot_unique(evaluation, folder / UNIQUE_CHART),
    ]
    report = folder / REPORT
    report.write_text(markdown_report(evaluation, params, [c.name for c in charts], cold_start))
    table = folder / TABLE_CSV
    evaluation.to_csv(table, index=False)
    files = [*charts, report, table]
    if cold_start is not None:
        files.append(folder / COLD_START_CSV)
        cold_start.to_csv(files[-1], index=False)
    log.info("report written to %s", folder)
    return files
