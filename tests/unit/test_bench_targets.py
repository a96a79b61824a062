"""The benchmark's verdicts on targets 4-8 are computed from the run's own rows (bench/run.py `targets`)."""

from __future__ import annotations

from bench.generate import SCALES
from bench.load import Sample, Stats
from bench.run import Row, ScaleResult, targets


def _stats(rps: float, latency_ms: float, queries: int = 1, method: str = "GET") -> Stats:
    seconds = 10.0
    samples = [Sample(latency_ms / 1000, 200, queries, method) for _ in range(int(rps * seconds))]
    return Stats(samples=samples, seconds=seconds)


def _result(scale: str, rows: dict[str, Stats], peak_mb: float = 150) -> ScaleResult:
    result = ScaleResult(SCALES[scale])
    result.rows = [Row(scale, key, key, stats, peak_mb) for key, stats in rows.items()]
    return result


def _verdicts(results: list[ScaleResult]) -> dict[str, tuple[bool | None, str]]:
    return {name.split(".")[0]: (met, figures) for name, met, figures in targets(results)}


def test_slot_search_share_of_the_ceiling_and_what_each_page_costs_against_it() -> None:
    rows = {"ceiling": _stats(800, 40, 0), "home": _stats(160, 150), "slots": _stats(100, 300, 3)}
    verdicts = _verdicts([_result("small", rows)])
    met, figures = verdicts["6"]
    assert met is False
    assert figures.startswith("small 12%")
    assert "home 5.0x, slots 8.0x; 30% needs 3.3x" in figures

    rows["slots"] = _stats(250, 90, 3)
    met, figures = _verdicts([_result("small", rows)])["6"]
    assert met is True and figures.startswith("small 31%")


def test_latency_target_names_the_minimal_endpoints_own_p95() -> None:
    rows = {key: _stats(100, 95, 3) for key in ("slots", "template", "record", "section")}
    rows["ceiling"] = _stats(800, 84, 0)
    met, figures = _verdicts([_result("small", rows)])["5"]
    assert met is True
    assert "the minimal endpoint itself, no database, no page: small 84 ms at 800/s" in figures

    rows["record"] = _stats(100, 120, 3)
    met, figures = _verdicts([_result("small", rows)])["5"]
    assert met is False and "small record 120 ms" in figures


def test_statements_must_be_the_same_at_both_scales_and_at_most_ten() -> None:
    small = _result("small", {"home": _stats(10, 50, 1), "order": _stats(10, 50, 23, "POST")})
    large = _result("large", {"home": _stats(10, 50, 1), "order": _stats(10, 50, 23, "POST")})
    met, figures = _verdicts([small, large])["4"]
    assert met is True  # form posts are actions, reported beside the pages
    assert "home 1/1" in figures and "form posts: order 23/23" in figures

    large = _result("large", {"home": _stats(10, 50, 2)})
    assert _verdicts([small, large])["4"][0] is False


def test_large_scale_latency_and_memory_need_the_large_scale() -> None:
    small = _result("small", {"home": _stats(10, 100)})
    verdicts = _verdicts([small])
    assert verdicts["7"] == (None, "needs both scales")
    assert verdicts["8"] == (None, "large scale not run")

    large = _result("large", {"home": _stats(10, 130)}, peak_mb=201)
    verdicts = _verdicts([small, large])
    assert verdicts["7"] == (False, "home 1.30x")
    assert verdicts["8"] == (False, "peak 201 MB")


def test_a_slow_practice_is_judged_against_the_same_traffic_with_its_link_healthy() -> None:
    """bench/gpconnect.py: the demo practice's p95 beside the slow practice is compared with its p95 beside the
    same patients on a healthy link; the figure against the demo practice alone is shown, not judged."""
    from bench.gpconnect import GpcRow
    from bench.gpconnect import targets as gpc_targets

    def rows(beside_healthy_ms: float) -> list[GpcRow]:
        found = []
        for name in ("slot search", "record overview", "book then cancel"):
            found += [
                GpcRow("demo", "-", name, _stats(100, 100)),
                GpcRow("demo", "300 ms", f"{name} (beside the practice at 300 ms)", _stats(100, beside_healthy_ms)),
                GpcRow("demo", "5 s", f"{name} (beside the slow practice)", _stats(100, 130)),
            ]
        return found

    met, compared = (next(line for line in gpc_targets(rows(ms), 16) if "unchanged" in line) for ms in (120, 110))
    assert "**met**" in met and "slot search 1.08x" in met
    assert "**not met**" in compared and "1.18x" in compared
    alone = next(line for line in gpc_targets(rows(120), 16) if "For comparison" in line)
    assert "slot search 1.30x" in alone and "met" not in alone


def test_rounds_are_pooled_request_by_request() -> None:
    """The p95 of pooled rounds is over every request of every round, not an average of the rounds' p95s."""
    quick, slow = _stats(100, 100), _stats(10, 1000)
    quick.errors, slow.errors, slow.last_error = 1, 2, "booking answered 503"
    pooled = Stats.pooled([quick, slow])
    assert pooled.requests == 1100 and pooled.seconds == 20.0 and pooled.rps == 55.0
    assert pooled.percentile(50) == 100 and pooled.percentile(95) == 1000  # 100 of 1,100 requests slow
    assert (pooled.errors, pooled.last_error) == (3, "booking answered 503")
