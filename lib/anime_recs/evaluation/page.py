"""The run's report page: one self-contained HTML file a person opens without a server.

Pure functions: data in, HTML (or one line of text) out. The page holds a one-line verdict
(:func:`verdict`), the ``evaluation`` table per view, the charts of :mod:`.report` as inline
base64 PNG data URIs, the fine-tune's held-out measures before and after training, a few
example users' promoted titles and lists, and the run's settings. Every text is escaped with
``html.escape``; numbers are formatted by :func:`number` (4 decimals, ``n/a`` for NaN).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from anime_recs.evaluation.report import plot_nps, plot_precision
from anime_recs.tables import ALL, COLD, HYBRID, WARM

PAGE = "index.html"
VERDICT_N = 10  # the list length the verdict and the tables' "@10" columns read
MISSING = "n/a"  # a NaN (no hit, no user) as the page and the verdict write it

VIEW_HEADINGS = {
    WARM: "Warm titles: ranked among and scored on the titles with a train rating",
    COLD: "New (cold) titles: ranked among and scored on the titles without a train rating",
    ALL: "Lists as made: every title, every test rating",
}


@dataclass(frozen=True)
class Chart:
    """One chart of the page: its caption and its PNG bytes."""

    caption: str
    png: bytes


@dataclass(frozen=True)
class Finetune:
    """The fine-tune run the page reports: its recipe, registered model, MLflow run id, numbers
    of train and validation pairs (as logged, None when not) and held-out measures
    ``{measure: (before, after)}`` (None where a side was not logged)."""

    recipe: str
    registered_model: str | None
    run_id: str
    train_pairs: str | None
    val_pairs: str | None
    measures: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Listed:
    """One title of an example user's list: its rank, id, name (None: not in ``anime``),
    whether it is a new (cold) title and the user's test rating of it (0: none)."""

    rank: int
    anime_id: int
    name: str | None
    cold: bool
    test_rating: int


@dataclass(frozen=True)
class ExampleUser:
    """A test user shown on the page: the titles they promoted in train as ``(id, name)``
    (name None: not in ``anime``) and the list of ``recommender`` (its ``all`` view)."""

    user_id: int
    recommender: str
    promoted: Sequence[tuple[int, str | None]]
    listed: Sequence[Listed]


# ------------------------------------------------------------------------------------------
# numbers and the verdict
# ------------------------------------------------------------------------------------------


def number(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals (never ``-0.0000``); ``n/a`` for None or NaN."""
    if value is None or math.isnan(value):
        return MISSING
    return f"{round(float(value), digits) + 0.0:.{digits}f}"


def top_n(evaluation: pd.DataFrame) -> int:
    """The list length the verdict reads: 10, or the table's largest N when 10 is not in it."""
    ns = set(int(n) for n in evaluation["n"])
    return VERDICT_N if VERDICT_N in ns else max(ns)


def _at(evaluation: pd.DataFrame, view: str, n: int) -> pd.DataFrame:
    """The rows of one view at list length ``n``, indexed by recommender."""
    rows = evaluation[(evaluation["view"] == view) & (evaluation["n"] == n)]
    return rows.set_index("recommender")


def _best(rows: pd.DataFrame, metric: str) -> tuple[str, float] | None:
    """The recommender of highest ``metric`` in ``rows`` (ties: first name), None when every
    value is NaN or there is no row."""
    values = rows[metric].dropna()
    if values.empty:
        return None
    ranked = sorted(values.items(), key=lambda item: (-item[1], item[0]))
    return ranked[0][0], float(ranked[0][1])


def verdict(evaluation: pd.DataFrame, content: str | None, served: str = HYBRID) -> str:
    """One line on the served recommender, at N = :func:`top_n`: its warm precision@N against
    the best other recommender's, its cold precision@N against the content embedder
    ``content``'s (the hybrid's cold side), and the share of its top-N slots (``all`` view,
    ``cold_share``) that hold new titles. Without the served recommender in the table: the best
    recommender of the warm and of the cold view. Precisions with 3 decimals, ``n/a`` for NaN.

    ``hybrid: warm P@10 0.120 (best other: ease 0.118); cold P@10 0.099 (base_minilm_128
    0.099); 9.8% of its top-10 slots hold new titles``
    """
    if evaluation.empty:
        return "no evaluation rows"
    n = top_n(evaluation)
    warm, cold, every = (_at(evaluation, view, n) for view in (WARM, COLD, ALL))
    if served not in set(evaluation["recommender"]):
        parts = []
        for view, rows in ((WARM, warm), (COLD, cold)):
            best = _best(rows, "precision")
            what = "none" if best is None else f"{best[0]} {number(best[1], 3)}"
            parts.append(f"best {view} P@{n}: {what}")
        return f"no {served} in this run; " + "; ".join(parts)

    parts = []
    if served in warm.index:
        best = _best(warm.drop(index=served), "precision")
        other = "no other recommender" if best is None else f"best other: {best[0]}"
        theirs = "" if best is None else f" {number(best[1], 3)}"
        parts.append(f"warm P@{n} {number(warm.at[served, 'precision'], 3)} ({other}{theirs})")
    else:
        parts.append("no warm rows")
    if served in cold.index:
        mine = number(cold.at[served, "precision"], 3)
        if content is not None and content in cold.index:
            theirs = f"{content} {number(cold.at[content, 'precision'], 3)}"
        else:
            theirs = f"{content or 'no content embedder'} not evaluated"
        parts.append(f"cold P@{n} {mine} ({theirs})")
    else:
        parts.append("no cold titles evaluated")
    if served in every.index and not math.isnan(every.at[served, "cold_share"]):
        share = float(every.at[served, "cold_share"])
        parts.append(f"{share:.1%} of its top-{n} slots hold new titles")
    return f"{served}: " + "; ".join(parts)


# ------------------------------------------------------------------------------------------
# the evaluation tables
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of the page's evaluation tables: ``metric`` of the ``evaluation`` table at list
    length ``n``, with its bootstrap CI (``<metric>_ci_low``/``_ci_high``) when ``ci``."""

    header: str
    metric: str
    n: int
    ci: bool


def evaluation_columns(evaluation: pd.DataFrame) -> list[Column]:
    """The metric columns of the tables: precision@1, @5 and @N with CIs, NPS@1 and @N with
    CIs, net promoter hits, promoter share and cold share @N (N = :func:`top_n`; an N the table
    lacks is left out)."""
    ns, top = set(int(n) for n in evaluation["n"]), top_n(evaluation)
    columns = [Column(f"P@{n} [95% CI]", "precision", n, True) for n in sorted({1, 5, top} & ns)]
    columns += [Column(f"NPS@{n} [95% CI]", "nps", n, True) for n in sorted({1, top} & ns)]
    columns += [
        Column(f"net promoter hits@{top}", "net_promoter_hits", top, False),
        Column(f"promoter share@{top}", "promoter_share", top, False),
        Column(f"cold share@{top}", "cold_share", top, False),
    ]
    return columns


def cell(rows: pd.DataFrame, column: Column) -> str:
    """One recommender's value of ``column`` (``rows``: its rows of one view, indexed by N):
    ``0.1200 [0.0800, 0.1600]`` with a CI, ``0.1200`` without; ``n/a`` for NaN."""
    value = number(rows.at[column.n, column.metric])
    if not column.ci:
        return value
    low = number(rows.at[column.n, f"{column.metric}_ci_low"])
    high = number(rows.at[column.n, f"{column.metric}_ci_high"])
    return f"{value} [{low}, {high}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], attrs: str = "") -> str:
    """An HTML table of escaped texts; ``attrs``: the table tag's attributes, as written."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def view_table(evaluation: pd.DataFrame, view: str) -> str:
    """The HTML table of one view: a row per recommender (best precision@N first, N =
    :func:`top_n`), the columns of :func:`evaluation_columns`; empty string when the view has
    no rows."""
    rows = evaluation[evaluation["view"] == view]
    if rows.empty:
        return ""
    columns, top = evaluation_columns(evaluation), top_n(evaluation)
    at_top = _at(rows, view, top)["precision"].dropna()
    order = sorted(set(rows["recommender"]), key=lambda r: (r not in at_top, -at_top.get(r, 0), r))
    body = []
    for name in order:
        mine = rows[rows["recommender"] == name].set_index("n")
        body.append([name, *(cell(mine, c) if c.n in mine.index else MISSING for c in columns)])
    header = ["recommender", *(c.header for c in columns)]
    return _table(header, body, f' class="evaluation" data-view="{html.escape(view)}"')


# ------------------------------------------------------------------------------------------
# charts, fine-tune, examples, settings
# ------------------------------------------------------------------------------------------


def png_of(plot: Callable[..., object], *args: object) -> bytes:
    """The PNG bytes ``plot(*args, file)`` writes (a plot function of :mod:`.report`)."""
    buffer = io.BytesIO()
    plot(*args, buffer)
    return buffer.getvalue()


def charts(evaluation: pd.DataFrame) -> list[Chart]:
    """Precision@N per recommender in the warm and the cold view and NPS@N in the ``all``
    view, rendered by :func:`.report.plot_precision` and :func:`.report.plot_nps` (a view
    without rows has no chart)."""
    out = []
    for view in (WARM, COLD):
        rows = evaluation[evaluation["view"] == view]
        if not rows.empty:
            caption = f"precision@N, {view} view"
            out.append(Chart(caption, png_of(plot_precision, rows, view)))
    rows = evaluation[evaluation["view"] == ALL]
    if not rows.empty:
        out.append(Chart("NPS@N, lists as made (all view)", png_of(plot_nps, rows)))
    return out


def chart_html(chart: Chart) -> str:
    """A figure with the chart inline as a ``data:image/png;base64`` URI."""
    data = base64.b64encode(chart.png).decode("ascii")
    caption = html.escape(chart.caption)
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def finetune_html(finetune: Finetune | None) -> str:
    """The fine-tune's recipe, registered model and held-out measures before -> after, or a
    sentence saying there is no finished fine-tune run."""
    if finetune is None:
        return "<p>No finished fine-tune run in the MLflow experiment: nothing to compare.</p>"
    facts = [
        ("recipe", finetune.recipe),
        ("registered model", finetune.registered_model or MISSING),
        ("MLflow run", finetune.run_id),
        ("train pairs", finetune.train_pairs or MISSING),
        ("validation pairs", finetune.val_pairs or MISSING),
    ]
    intro = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in facts)
    rows = [
        [name, number(before), number(after)]
        for name, (before, after) in sorted(finetune.measures.items())
    ]
    table = (
        _table(["held-out measure", "before", "after"], rows, ' class="finetune"')
        if rows
        else "<p>The run logged no held-out measure.</p>"
    )
    return f"<ul>{intro}</ul>{table}"


def _title(anime_id: int, name: str | None) -> str:
    return f"{name} ({anime_id})" if name is not None else f"title {anime_id} (not in anime)"


def example_html(user: ExampleUser, promoted_shown: int = 10) -> str:
    """One example user: their promoted train titles by name (the first ``promoted_shown``,
    then how many more) and ``user.recommender``'s list, each title marked warm or new and
    with the user's test rating of it."""
    shown = [_title(a, n) for a, n in user.promoted[:promoted_shown]]
    more = len(user.promoted) - len(shown)
    promoted = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    rows = [
        [
            str(item.rank),
            _title(item.anime_id, item.name),
            "new (cold)" if item.cold else "warm",
            str(item.test_rating) if item.test_rating else "",
        ]
        for item in user.listed
    ]
    header = ["rank", "title", "warm or new", "test rating"]
    return (
        f"<h3>User {user.user_id}</h3>"
        f"<p>Promoted in train (9-10, {len(user.promoted)}): {html.escape(promoted)}</p>"
        f"<p>{html.escape(user.recommender)}'s list:</p>" + _table(header, rows, ' class="example"')
    )


def settings_table(params: Mapping[str, object]) -> str:
    """The run's settings (``recommend.*`` and the input versions), one row per key, sorted."""
    rows = [[key, str(value)] for key, value in sorted(params.items())]
    return _table(["setting", "value"], rows, ' class="settings"')


STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em; }
.verdict { font-size: 1.2em; font-weight: bold; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td { font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
figure { display: inline-block; margin: 0 1em 1em 0; max-width: 48em; }
"""


def page(
    evaluation: pd.DataFrame,
    params: Mapping[str, object],
    content: str | None,
    figures: Sequence[Chart],
    finetune: Finetune | None,
    examples: Sequence[ExampleUser],
) -> str:
    """The whole page as one HTML document: the :func:`verdict` line (``content``: the hybrid's
    content embedder), the evaluation table of each view (warm, cold, all) with its number of
    test users, ``figures`` inline, the fine-tune's held-out measures, the ``examples`` and the
    settings ``params``."""
    title = "anime-recs: recommend run"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="verdict" id="verdict">{html.escape(verdict(evaluation, content))}</p>',
        "<p>Precision@N: titles the user rated 9-10 in the test split per list slot; NPS@N: "
        "mean position-weighted points per hit (+1 for 9-10, 0 for 7-8, -1 for 1-6); 95% "
        "bootstrap CIs over users. Tables and charts come from the <code>evaluation</code> "
        "table written by this run.</p>",
        "<h2>Evaluation</h2>",
    ]
    for view in (WARM, COLD, ALL):
        table = view_table(evaluation, view)
        if not table:
            parts.append(f"<p>No rows in the {html.escape(view)} view.</p>")
            continue
        users = int(evaluation[evaluation["view"] == view]["users_total"].max())
        parts += [
            f"<h3>{html.escape(VIEW_HEADINGS[view])}</h3>",
            f"<p>{users} test users.</p>",
            table,
        ]
    parts.append("<h2>Charts</h2>")
    parts += [chart_html(c) for c in figures] or ["<p>No charts.</p>"]
    parts += ["<h2>Fine-tune: held-out measures</h2>", finetune_html(finetune)]
    parts += [
        "<h2>Example users</h2>",
        "<p>The first test users by id with promoted train titles. Each list is the one the "
        "evaluation scores as made (the <code>all</code> view); a title is new (cold) when it "
        "has no train rating; test rating: the user's held-out rating of it, blank when "
        "none.</p>",
    ]
    parts += [example_html(u) for u in examples] or ["<p>No test user with promoted titles.</p>"]
    parts += ["<h2>Settings</h2>", settings_table(params), "</body></html>"]
    return "\n".join(parts) + "\n"
