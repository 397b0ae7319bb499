from __future__ import annotations

import json
import uuid

import pytest

from redline.plan import DataSource, RenderContext, compile_template, plan_from_dict

USERS = DataSource(
    name="users",
    path="u.csv",
    columns=("name", "id"),
    rows=(("ada", "1"), ("bob", "2"), ("cy", "3")),
)


def test_static_text_is_static() -> None:
    template = compile_template("/plain/path", {})
    assert template.static
    assert template.render(RenderContext()) == "/plain/path"


def test_functions_render_in_range_and_reproducibly() -> None:
    template = compile_template("/p/${randint(1, 3)}/${choice(x, y)}/${uuid()}", {})
    assert not template.static
    first = [template.render(RenderContext(seed=5)) for _ in range(3)]
    again = [template.render(RenderContext(seed=5)) for _ in range(3)]
    assert first == again
    _, _, n, pick, ident = first[0].split("/")
    assert 1 <= int(n) <= 3
    assert pick in ("x", "y")
    assert uuid.UUID(ident).version == 4


def test_sequences_and_rows_are_partitioned_between_workers() -> None:
    template = compile_template("${seq(10)}:${users.name}", {"users": USERS})
    workers = [RenderContext(seed=0, stride=2, offset=i) for i in range(2)]
    rendered = [template.render(ctx) for _ in range(3) for ctx in workers]
    seqs = sorted(int(r.split(":")[0]) for r in rendered)
    assert seqs == list(range(10, 16))  # every value once, no worker repeats another's
    assert [r.split(":")[1] for r in rendered[:3]] == ["ada", "bob", "cy"]


def test_columns_of_one_row_stay_together() -> None:
    template = compile_template("${users.name}=${users.id}", {"users": USERS})
    ctx = RenderContext()
    assert [template.render(ctx) for _ in range(4)] == ["ada=1", "bob=2", "cy=3", "ada=1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${randint(5, 1)}", "low <= high"),
        ("${randint(a)}", "two integers"),
        ("${choice()}", "at least one"),
        ("${uuid(3)}", "no arguments"),
        ("${users.email}", "no column 'email'"),
        ("${people.name}", "unknown data source 'people'"),
        ("${1+1}", "expected a function call"),
        ("/x/${seq(", "unterminated"),
    ],
)
def test_template_errors_explain(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_template(text, {"users": USERS})


def test_environment_variables_are_filled_in_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "t0k3n-${not-a-placeholder}")
    template = compile_template("/v1/${env.API_TOKEN}/items", {})
    assert template.static
    assert template.render(RenderContext(seed=1)) == "/v1/t0k3n-${not-a-placeholder}/items"
    assert template.text == "/v1/${env.API_TOKEN}/items"  # what results record
    monkeypatch.delenv("API_TOKEN")
    with pytest.raises(ValueError, match="environment variable 'API_TOKEN' is not set"):
        compile_template("/v1/${env.API_TOKEN}", {})


def test_a_secret_header_from_the_environment_is_scrubbed_but_never_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_KEY", "k-7781")
    plan = plan_from_dict(
        {"target": "http://127.0.0.1:1", "redact": ["X-Shop-Key"],
         "requests": [{"path": "/", "headers": {"X-Shop-Key": "${env.SHOP_KEY}"}}],
         "load": {"rate": 1}, "duration": "1s"}
    )  # fmt: skip
    assert "k-7781" not in json.dumps(plan.to_dict())
    assert plan.redactor().lines(["failed with k-7781"]) == ("failed with [redacted]",)
