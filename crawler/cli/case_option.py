"""The click callback every ``--case``/``CASE`` parameter uses: the case-id rule before anything runs."""

from __future__ import annotations

import click

from foundation.case_ids import CASE_ID_RULE, is_case_id


def case_id_param(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> str | None:
    if value is not None and not is_case_id(value):
        raise click.BadParameter(f"invalid case id {value[:80]!r}: {CASE_ID_RULE}")
    return value
