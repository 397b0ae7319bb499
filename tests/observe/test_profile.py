"""Reading py-spy's output: folded stacks, what a waiting stack waits on, top functions."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from redline.observe._profile import classify_wait, parse_folded, top_functions

STDLIB = "/usr/lib/python3.11"
APP = "/srv/app/shop.py"


def frame(function: str, file: str, line: int) -> str:
    return f"{function} ({file}:{line})"


def test_folded_lines_drop_process_and_thread_frames_and_merge_equal_stacks() -> None:
    text = (
        'process 12:"python app.py";Thread 0x7F (active);main (/srv/a.py:3);work (/srv/a.py:9) 5\n'
        'process 13:"python app.py";main (/srv/a.py:3);work (/srv/a.py:9) 2\n'
        "not a line\n"
        "main (/srv/a.py:3) 1\n"
    )
    folded = parse_folded(text)
    assert folded == {"main (/srv/a.py:3);work (/srv/a.py:9)": 7, "main (/srv/a.py:3)": 1}


def test_waits_are_sorted_by_what_is_below_the_applications_deepest_frame(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app.py"
    app.write_text("def handler():\n    with LOCK:\n        time.sleep(0.02)\n")
    root = frame("_bootstrap", f"{STDLIB}/threading.py", 1002)
    pool = ";".join(
        [root, frame("handler", APP, 40), frame("get", f"{STDLIB}/queue.py", 171),
         frame("wait", f"{STDLIB}/threading.py", 320)]
    )  # fmt: skip
    io = ";".join([root, frame("handler", APP, 40), frame("recv_into", f"{STDLIB}/socket.py", 9)])
    lock = ";".join([root, frame("handler", str(app), 2)])
    sleep = ";".join([root, frame("handler", str(app), 3)])
    idle = ";".join([root, frame("_worker", f"{STDLIB}/concurrent/futures/thread.py", 81)])
    served = ";".join([frame("<module>", APP, 90), frame("select", f"{STDLIB}/selectors.py", 415)])
    assert classify_wait(pool) == "pool"
    assert classify_wait(io) == "io"
    assert classify_wait(lock) == "lock"
    assert classify_wait(sleep) == "sleep"
    assert classify_wait(idle) is None  # no application frame: an idle worker
    assert classify_wait(served) is None  # a script's serve_forever loop is not a request


def test_top_functions_rank_self_time_and_count_recursion_once() -> None:
    folded = {
        ";".join([frame("main", APP, 1), frame("scan", APP, 10)]): 6,
        ";".join([frame("main", APP, 1), frame("scan", APP, 12)]): 2,
        ";".join([frame("main", APP, 1), frame("walk", APP, 20), frame("walk", APP, 21)]): 2,
    }
    top = top_functions(folded)
    assert [f.function for f in top] == ["scan", "walk", "main"]
    scan, walk, main = top
    assert (scan.self_pct, scan.total_pct, scan.line) == (80.0, 80.0, 10)
    assert (walk.self_pct, walk.total_pct) == (20.0, 20.0)  # once per stack, not twice
    assert (main.self_pct, main.total_pct) == (0.0, 100.0)


stacks = st.dictionaries(
    st.lists(
        st.sampled_from(["a", "b", "c", "d"]).map(lambda f: frame(f, APP, 1)),
        min_size=1,
        max_size=6,
    ).map(";".join),
    st.integers(min_value=1, max_value=1000),
    min_size=1,
    max_size=20,
)


@given(stacks)
def test_shares_are_consistent_for_any_profile(folded: dict[str, int]) -> None:
    top = top_functions(folded, limit=100)
    # every sample has one leaf: the self shares add up to 100 (each rounded to 0.01)
    assert abs(sum(f.self_pct for f in top) - 100.0) <= 0.005 * len(top) + 1e-9
    for function in top:
        assert 0 <= function.self_pct <= function.total_pct <= 100.0
