"""The SQL both backends speak, made PostgreSQL's (events/postgres.py, _postgres_sql)."""

from __future__ import annotations

import pytest

from events.postgres import _postgres_sql


def test_placeholders_become_psycopg_s_and_a_percent_is_doubled() -> None:
    sql = "SELECT a FROM t WHERE b = ? AND c LIKE 'x' AND d % 2 = ?"
    assert _postgres_sql(sql) == "SELECT a FROM t WHERE b = %s AND c LIKE 'x' AND d %% 2 = %s"


def test_a_placeholder_between_two_literals_is_a_placeholder() -> None:
    sql = "SELECT 1 FROM t WHERE a = 'x' AND b = ? AND c = 'it''s'"
    assert _postgres_sql(sql) == "SELECT 1 FROM t WHERE a = 'x' AND b = %s AND c = 'it''s'"


@pytest.mark.parametrize("literal", ["'?'", "'50%'", "'it''s ?'", "'a' || 'b?'"])
def test_a_literal_holding_a_mark_is_refused(literal: str) -> None:
    with pytest.raises(ValueError, match="pass the value as a parameter"):
        _postgres_sql(f"SELECT {literal} FROM t WHERE a = ?")


def test_text_columns_of_a_created_table_compare_in_byte_order() -> None:
    created = _postgres_sql('CREATE TABLE t (a TEXT NOT NULL, b TEXT COLLATE "C", c INTEGER)')
    assert created == 'CREATE TABLE t (a TEXT COLLATE "C" NOT NULL, b TEXT COLLATE "C", c INTEGER)'
