"""What the recommend stage gathers for its report page: the example users (first test users by
id with promoted titles, named from ``anime``, new titles marked) and the newest finished
fine-tune run of the MLflow store."""

from __future__ import annotations

import numpy as np

from anime_recs import tables
from anime_recs.config import load_config
from anime_recs.evaluation.page import ExampleUser, Finetune, Listed
from anime_recs.recommend.stage import example_users, latest_finetune
from tests.helpers import CONF


def test_example_users_are_the_first_with_promoted_titles_named_and_marked(spark):
    ratings = spark.createDataFrame(
        [
            (1, 1, 10, "train"),
            (1, 2, 9, "train"),
            (1, 4, 3, "train"),
            (1, 5, 9, "test"),
            (2, 1, 8, "train"),  # no promoted title: not an example
            (3, 3, 9, "train"),
            (4, 1, 9, "train"),
        ],
        schema=tables.RATINGS_SCHEMA,
    )
    scores = [
        ("hybrid", "all", 1, [5, 6], [9, 0]),
        ("hybrid", "all", 2, [3], [0]),
        ("hybrid", "all", 3, [4, 1], [0, 7]),
        ("hybrid", "all", 4, [2], [0]),
        ("hybrid", "warm", 1, [4], [0]),  # another view
        ("ease", "all", 2, [4], [0]),  # another recommender
    ]
    user_scores = spark.createDataFrame(
        [(r, v, u, a, [0.5] * len(a), t, 0, 0) for r, v, u, a, t in scores],
        schema=tables.USER_SCORES_SCHEMA,
    )
    anime = spark.createDataFrame(
        [(1, "Bebop"), (2, "Akira"), (3, "Trigun"), (4, "Monster"), (5, "Eva")],
        "anime_id int, name string",
    )
    warm = np.array([1, 2, 3, 4])

    got = example_users(user_scores, ratings, anime, warm, "hybrid", 2)
    assert got == [
        ExampleUser(
            1,
            "hybrid",
            [(2, "Akira"), (1, "Bebop")],
            [Listed(1, 5, "Eva", True, 9), Listed(2, 6, None, True, 0)],
        ),
        ExampleUser(
            3,
            "hybrid",
            [(3, "Trigun")],
            [Listed(1, 4, "Monster", False, 0), Listed(2, 1, "Bebop", False, 7)],
        ),
    ]
    unnamed = example_users(user_scores, ratings, None, warm, "hybrid", 1)
    assert unnamed[0].promoted == [(1, None), (2, None)]
    assert example_users(user_scores, ratings, anime, warm, "als", 3) == []


def test_latest_finetune_is_the_newest_finished_fine_tune_run(tmp_path):
    import mlflow

    config = load_config(
        CONF,
        [
            f"mlflow.tracking_uri={(tmp_path / 'mlruns').as_uri()}",
            f"mlflow.artifact_location={tmp_path / 'mlartifacts'}",
        ],
    )
    assert latest_finetune(config) is None  # an empty store
    client = mlflow.MlflowClient()
    experiment_id = client.get_experiment_by_name(config.mlflow.experiment).experiment_id

    def logged(start: int, status: str, params: dict, metrics: dict) -> str:
        run = client.create_run(experiment_id, start_time=start)
        for key, value in params.items():
            client.log_param(run.info.run_id, key, value)
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id, status)
        return run.info.run_id

    lora = {"finetune.recipe": "lora", "finetune.registered_model": "enc"}
    logged(1000, "FINISHED", lora, {"val_spearman_before": 0.1, "val_spearman_after": 0.2})
    contrastive = {
        "finetune.recipe": "contrastive",
        "finetune.registered_model": "enc_contrastive",
        "data.train_pairs": "120",
        "data.val_pairs": "30",
    }
    newest = logged(
        2000,
        "FINISHED",
        contrastive,
        {"val_ndcg_before": 0.5, "val_ndcg_after": 0.625, "wall_s": 3},
    )
    logged(3000, "FAILED", lora, {})  # interrupted: not reported
    logged(4000, "FINISHED", {"recommend.k": "3"}, {})  # not a fine-tune

    assert latest_finetune(config) == Finetune(
        "contrastive", "enc_contrastive", newest, "120", "30", {"ndcg": (0.5, 0.625)}
    )
