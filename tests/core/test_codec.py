"""The codec of the core's dataclasses: round trips, old documents, errors with paths."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.core import (
    FaultSummary,
    LoadSummary,
    Objective,
    PlanSummary,
    RequestSummary,
    RunMeta,
    ShapeSummary,
    StageSummary,
    Verdict,
    parse_objective,
)

finite = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
names = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8)

stages = st.one_of(
    st.builds(StageSummary, duration=finite, rate=finite),
    st.builds(StageSummary, duration=finite, vus=finite),
)
loads = st.one_of(
    st.builds(LoadSummary, model=st.just("open"), arrivals=st.sampled_from(["constant", "poisson"]),
              rate=finite),
    st.builds(LoadSummary, model=st.just("open"), arrivals=st.just("constant"), start_rate=finite,
              stages=st.lists(stages, max_size=3).map(tuple)),
    st.builds(LoadSummary, model=st.just("closed"), think=st.tuples(finite, finite),
              vus=st.integers(1, 1000)),
)  # fmt: skip
objectives = st.sampled_from(["p99 < 250ms", "error_rate < 0.1%", "rps >= 900", "mean < 3ms"]).map(
    parse_objective
)
plans = st.builds(
    PlanSummary,
    name=names,
    target=st.just("http://127.0.0.1:8080"),
    load=loads,
    duration_s=finite,
    warmup_s=finite,
    requests=st.lists(
        st.builds(RequestSummary, name=names, method=st.sampled_from(["GET", "POST"]),
                  headers=st.dictionaries(names, names, max_size=2),
                  body=st.one_of(st.none(), names)),
        max_size=3,
    ).map(tuple),
    objectives=st.lists(objectives, max_size=3).map(tuple),
    timeouts=st.fixed_dictionaries({"connect": finite, "read": finite}),
    redact=st.lists(names, max_size=2).map(tuple),
    shape=st.one_of(st.none(), st.builds(ShapeSummary, type=st.just("spike"), peak=finite,
                                         at_s=finite, for_s=finite, multiple=finite)),
    faults=st.lists(st.builds(FaultSummary, name=names, type=st.just("latency"), proxy=names,
                              at_s=finite, for_s=finite,
                              toxic=st.just({"type": "latency", "attributes": {"latency": 5}})),
                    max_size=2).map(tuple),
)  # fmt: skip


@given(plans)
def test_a_plan_summary_survives_json(plan: PlanSummary) -> None:
    text = json.dumps(plan.to_dict())
    assert PlanSummary.from_dict(json.loads(text)) == plan


metas = st.builds(
    RunMeta,
    labels=st.dictionaries(names, names, max_size=3),
    git_commit=st.one_of(st.none(), names),
    pid=st.one_of(st.none(), st.integers(1)),
)


@given(metas)
def test_meta_survives_json(meta: RunMeta) -> None:
    assert RunMeta.from_dict(json.loads(json.dumps(meta.to_dict()))) == meta


def test_a_verdict_keeps_its_window_as_a_pair_and_its_objective_text() -> None:
    objective = parse_objective("p99 < 250ms", source="plan.yaml", path="slo[0]")
    verdict = Verdict(objective, "fail", 300.0, "too slow", samples=9, window=(3.0, 7.0))
    data = json.loads(json.dumps(verdict.to_dict()))
    assert data["objective"]["objective"] == "p99 < 250ms"  # the text, under its JSON key
    assert "source" not in data["objective"]  # where it came from is not part of a result
    again = Verdict.from_dict(data)
    assert again.window == (3.0, 7.0)
    assert again.objective.text == "p99 < 250ms"
    assert again == Verdict(Objective.from_dict(data["objective"]), "fail", 300.0, "too slow",
                            samples=9, window=(3.0, 7.0))  # fmt: skip


def test_missing_fields_take_their_defaults_and_unknown_ones_are_ignored() -> None:
    plan = PlanSummary.from_dict({"name": "old", "load": {"rate": 5}, "added_later": [1, 2]})
    assert plan == PlanSummary(name="old", load=LoadSummary(rate=5.0))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"load": {"rate": "fast"}}, r"\$\.plan\.load\.rate: expected a number, got 'fast'"),
        ({"load": {"model": "half-open"}},
         r"\$\.plan\.load\.model: expected one of 'open', 'closed'"),
        ({"slo": [{"objective": "p99 < 1s"}]}, r"\$\.plan\.slo\[0\]\.name: missing"),
        ({"requests": [{"name": "a", "weight": 1.5}]},
         r"\$\.plan\.requests\[0\]\.weight: expected a whole number"),
        ({"redact": "authorization"}, r"\$\.plan\.redact: expected a list"),
    ],
)  # fmt: skip
def test_a_malformed_plan_names_the_path_and_what_was_expected(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PlanSummary.from_dict(data)
