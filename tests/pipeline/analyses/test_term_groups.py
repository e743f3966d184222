"""Term groups from the mask's overlaps: the rule, the linkage, numbering and names."""

from __future__ import annotations

import numpy as np
import pytest

from iae_pipeline.analyses.term_groups import (
    GROUP_COLUMNS,
    membership,
    term_groups,
    term_similarity,
)


def columns(*sets: set[int], genes: int = 50) -> np.ndarray:
    """Genes x terms 0/1 mask with one column per set of gene indices."""
    out = np.zeros((genes, len(sets)))
    for j, s in enumerate(sets):
        out[list(s), j] = 1
    return out


CHILD, PARENT, GRANDPARENT = set(range(10)), set(range(20)), set(range(40))
OTHER = set(range(40, 50))


def test_jaccard_and_overlap_similarities() -> None:
    sim = term_similarity(columns(CHILD, PARENT, OTHER))
    assert sim[0, 1] == pytest.approx(0.5) and sim[0, 2] == 0 and np.allclose(np.diag(sim), 1)
    over = term_similarity(columns(CHILD, GRANDPARENT), rule="overlap")
    assert over[0, 1] == pytest.approx(1.0)  # the child lies inside the grandparent


def test_nested_sets_form_one_group_by_single_linkage_and_split_by_complete() -> None:
    m = columns(CHILD, PARENT, GRANDPARENT, OTHER)
    terms = ["CHILD", "PARENT", "GRANDPARENT", "OTHER"]
    single = term_groups(m, terms, threshold=0.4)
    assert list(single.columns) == list(GROUP_COLUMNS)
    assert single["group"].tolist() == [1, 1, 1, 2]  # child-grandparent is 0.25: a chain
    assert single["group_name"].iloc[0] == "GRANDPARENT"  # the member with most genes
    assert single["group_genes"].iloc[0] == 40 and single["group_size"].iloc[0] == 3
    complete = term_groups(m, terms, threshold=0.4, method="complete")
    assert complete["group"].nunique() == 3  # the grandparent is too far from the child
    assert term_groups(m, terms, threshold=0.6)["group"].nunique() == 4


def test_groups_are_numbered_by_genes_and_named_alphabetically_on_ties() -> None:
    m = columns({0, 1}, {2, 3, 4}, {2, 3, 4, 5}, {6, 7, 8, 9, 10}, {6, 7, 8, 9, 11})
    groups = term_groups(m, ["small", "b", "a", "y", "x"], threshold=0.4)
    assert groups.set_index("term")["group"].to_dict() == {
        "y": 1, "x": 1, "a": 2, "b": 2, "small": 3,
    }  # fmt: skip
    assert groups.set_index("term").loc["y", "group_name"] == "x"  # 5 genes each: by name


def test_membership_matrix() -> None:
    m = columns(CHILD, PARENT, OTHER)
    groups = term_groups(m, ["A", "B", "C"])
    member, numbers = membership(groups, ["C", "A", "B"])
    assert numbers == [1, 2] and member.tolist() == [[0, 1], [1, 0], [1, 0]]
    with pytest.raises(ValueError, match="no group"):
        membership(groups, ["D"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rule": "cosine"}, "rule"),
        ({"threshold": 0.0}, "threshold"),
        ({"method": "ward"}, "linkage"),
    ],
)
def test_bad_settings_are_refused(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        term_groups(columns(CHILD, PARENT), ["A", "B"], **kwargs)
