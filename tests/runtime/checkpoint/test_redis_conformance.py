"""LangGraph's checkpointer conformance suite, run against our Redis saver (real
Redis at REDIS_URL) and, for comparison, LangGraph's memory and SQLite savers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer
from langgraph.checkpoint.conformance.report import CapabilityReport
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from runtime.checkpoint.redis_saver import RedisCheckpointSaver

# The suite's base capabilities hold 58 checks (put 17, put_writes 10,
# get_tuple 10, list 16, delete_thread 5).
BASE_CHECKS = 58


def _summarise(report: CapabilityReport) -> tuple[int, int, list[str]]:
    ran = [r for r in report.results.values() if r.detected]
    passed = sum(r.tests_passed for r in ran)
    failed = sum(r.tests_failed for r in ran)
    failures = [f for r in ran for f in r.failures]
    detected = sorted(name for name, r in report.results.items() if r.detected)
    print(
        f"\nconformance {report.checkpointer_name}: {passed} passed, {failed} failed "
        f"({report.conformance_level()}; capabilities run: {', '.join(detected)})"
    )
    return passed, failed, failures


def _base_checks(report: CapabilityReport) -> int:
    return sum(report.results[cap.value].tests_passed for cap in BASE_CAPABILITIES)


@pytest.mark.redis
async def test_redis_saver_passes_the_conformance_suite(redis_url: str) -> None:
    prefix = f"switchboard-conformance:{uuid.uuid4().hex}"

    @checkpointer_test(name=f"RedisCheckpointSaver[{prefix}]")
    async def redis_saver() -> AsyncIterator[BaseCheckpointSaver[str]]:
        saver = RedisCheckpointSaver.from_url(redis_url, prefix=prefix, ttl_s=600)
        try:
            yield saver
        finally:
            await saver.aclose()

    try:
        report = await validate(redis_saver)
    finally:
        client = aioredis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    passed, failed, failures = _summarise(report)
    assert failed == 0, failures
    assert report.passed_all() and report.passed_all_base()
    assert _base_checks(report) == BASE_CHECKS
    # Extended capabilities we implement run too (delete_for_runs is not offered).
    assert report.results["copy_thread"].passed and report.results["prune"].passed
    assert passed > BASE_CHECKS


@checkpointer_test(name="InMemorySaver")
async def memory_saver() -> AsyncIterator[BaseCheckpointSaver[str]]:
    yield InMemorySaver()


@checkpointer_test(name="AsyncSqliteSaver")
async def sqlite_saver() -> AsyncIterator[BaseCheckpointSaver[str]]:
    async with AsyncSqliteSaver.from_conn_string(":memory:") as saver:
        yield saver


@pytest.mark.parametrize("registered", [memory_saver, sqlite_saver], ids=["memory", "sqlite"])
async def test_reference_savers_pass_the_base_suite(registered: RegisteredCheckpointer) -> None:
    report = await validate(registered)
    _passed, failed, failures = _summarise(report)
    assert failed == 0, failures
    assert report.passed_all_base()
    assert _base_checks(report) == BASE_CHECKS
