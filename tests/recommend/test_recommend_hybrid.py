"""The hybrid recommender's fused neighbour lists, pinned on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anime_recs.recommend.fusion import (
    TitlePrior,
    minmax_by_key,
    rrf_similarity,
    score_similarity,
    title_prior,
    title_priors_of_counts,
    with_prior,
)
from anime_recs.recommend.hybrid import hybrid_neighbors


def frame(rows):
    return pd.DataFrame(rows, columns=["anime_id", "neighbor_id", "rank", "similarity"])


CF = frame([(1, 2, 1, 0.5), (1, 3, 2, 0.4)])
CONTENT = frame([(1, 3, 1, 0.9), (1, 4, 2, 0.8), (9, 1, 1, 0.7)])


def test_rrf_similarity_by_hand():
    # (k+1) * (w/(k+r_cf) + (1-w)/(k+r_content)), k=1, w=0.5; rank 0 = missing
    got = rrf_similarity(np.array([1, 2, 0]), np.array([0, 1, 2]), 0.5, 1)
    np.testing.assert_allclose(got, [0.5, 2 * (0.5 / 3 + 0.5 / 2), 2 * 0.5 / 3])


def test_first_in_both_lists_scores_one():
    assert rrf_similarity(np.array([1]), np.array([1]), 0.3, 60)[0] == pytest.approx(1.0)


def test_score_similarity_treats_missing_as_zero():
    got = score_similarity(np.array([1.0, np.nan]), np.array([0.5, 1.0]), 0.25)
    np.testing.assert_allclose(got, [0.25 + 0.75 * 0.5, 0.75])


def test_minmax_by_key():
    got = minmax_by_key(np.array([1, 1, 1, 2]), np.array([0.2, 0.4, 0.3, 0.9]))
    np.testing.assert_allclose(got, [0.0, 1.0, 0.5, 1.0])


def test_hybrid_rrf_neighbors_by_hand():
    got = hybrid_neighbors(CF, CONTENT, k=2, fusion="rrf", weight_cf=0.5, rrf_k=1)
    # title 1: 3 -> 2 (0.5/3 + 0.5/2); 4 has no collaborative data: 2 (1/3); 2 -> 2 (0.5/2)
    expected = frame([(1, 3, 1, 2 * (0.5 / 3 + 0.5 / 2)), (1, 4, 2, 2 / 3), (9, 1, 1, 0.5)])
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected.astype(got.dtypes.to_dict()), check_exact=False
    )


def test_hybrid_score_fusion_ties_go_to_the_smaller_id():
    got = hybrid_neighbors(CF, CONTENT, k=2, fusion="score", weight_cf=0.5, rrf_k=60)
    # title 1: 2 -> 0.5*1 + 0.5*0, 3 -> 0.5*0 + 0.5*1 (tie: 2 first), 4 -> 0
    assert got[got.anime_id == 1][["neighbor_id", "similarity"]].values.tolist() == [
        [2, 0.5],
        [3, 0.5],
    ]


def test_cf_weight_drops_for_candidates_without_collaborative_data():
    np.testing.assert_allclose(
        score_similarity(np.array([0.0, 0.0]), np.array([0.75, 0.75]), 0.9, np.array([1, 0])),
        [0.1 * 0.75, 0.75],
    )


def test_a_cold_candidate_competes_on_its_content_similarity():
    cf = frame([(1, 2, 1, 0.5), (1, 3, 2, 0.4), (6, 4, 1, 0.3)])
    content = frame([(1, 3, 1, 0.9), (1, 5, 2, 0.85), (1, 4, 3, 0.7)])
    got = hybrid_neighbors(cf, content, k=4, fusion="score", weight_cf=0.9, rrf_k=60)
    # title 1: cf norm 2 -> 1, 3 -> 0; content norm 3 -> 1, 5 -> 0.75, 4 -> 0; 5 is cold
    rows = got[got.anime_id == 1]
    assert rows.neighbor_id.tolist() == [2, 5, 3, 4]
    assert rows.similarity.tolist() == pytest.approx([0.9, 0.75, 0.1, 0.0])


def test_a_title_without_collaborative_neighbours_keeps_its_content_ones():
    got = hybrid_neighbors(CF, CONTENT, k=3, fusion="rrf", weight_cf=0.9, rrf_k=60)
    assert got[got.anime_id == 9].neighbor_id.tolist() == [1]


def test_weight_one_reproduces_the_collaborative_order():
    got = hybrid_neighbors(CF, CONTENT, k=3, fusion="rrf", weight_cf=1.0, rrf_k=60)
    assert got[got.anime_id == 1].neighbor_id.tolist()[:2] == [2, 3]


def test_unknown_fusion_is_rejected():
    with pytest.raises(ValueError, match="unknown fusion"):
        hybrid_neighbors(CF, CONTENT, k=2, fusion="max", weight_cf=0.5, rrf_k=60)


def test_title_prior_by_hand():
    # (promoters - detractors + m * g) / (raters + m) with m = 2, g = 0.25
    got = title_prior(np.array([3, 0, 0]), np.array([1, 2, 0]), np.array([6, 2, 0]), 2.0, 0.25)
    np.testing.assert_allclose(got, [(2 + 0.5) / 8, (-2 + 0.5) / 4, 0.25])


def test_title_priors_of_counts_use_the_catalogue_mean_by_hand():
    # promoters 4 and 0, detractors 1 and 1, raters 5 and 3: mean (3 - 1) / 8 = 0.25;
    # strength 2: (4 - 1 + 0.5) / 7 = 0.5 and (0 - 1 + 0.5) / 5 = -0.1
    prior = title_priors_of_counts(np.array([3, 7]), [4, 0], [1, 1], [5, 3], 2.0)
    assert prior.default == 0.25
    np.testing.assert_allclose(prior.values, [0.5, -0.1])
    np.testing.assert_allclose(prior.of(np.array([7, 3, 99])), [-0.1, 0.5, 0.25])
    assert title_priors_of_counts(np.array([], dtype=np.int64), [], [], [], 2.0).default == 0.0


def test_with_prior_blends():
    np.testing.assert_allclose(
        with_prior(np.array([1.0, 0.5]), np.array([0.0, 1.0]), 0.2), [0.8, 0.6]
    )


def test_title_prior_lookup_defaults_to_the_catalogue_mean():
    prior = TitlePrior(np.array([2, 5]), np.array([0.7, -0.1]), 0.3)
    np.testing.assert_allclose(prior.of(np.array([5, 3, 2, 9])), [-0.1, 0.3, 0.7, 0.3])


def test_prior_reorders_equally_similar_candidates():
    # content-only title 9 candidates 1 and 2 tie on similarity; the prior puts 2 first
    content = frame([(9, 1, 1, 0.5), (9, 2, 2, 0.5)])
    prior = TitlePrior(np.array([1, 2]), np.array([0.1, 0.6]), 0.0)
    plain = hybrid_neighbors(frame([]), content, 2, "score", 0.9, 60)
    blended = hybrid_neighbors(frame([]), content, 2, "score", 0.9, 60, prior, 0.5)
    assert plain["neighbor_id"].tolist() == [1, 2]
    assert blended["neighbor_id"].tolist() == [2, 1]
    # 0.5 x minmax(1.0) + 0.5 x prior
    np.testing.assert_allclose(blended["similarity"], [0.8, 0.55])


def test_prior_weight_without_a_prior_fails():
    with pytest.raises(ValueError, match="prior"):
        hybrid_neighbors(CF, CONTENT, 2, "score", 0.9, 60, prior_weight=0.1)
