"""Each table's schema contract (``tables.SCHEMAS``) and how a schema differs from it."""

from __future__ import annotations

from pyspark.sql.types import StructType

from anime_recs.tables import SCHEMAS


def contract_difference(contract: StructType, actual: StructType) -> str | None:
    """How ``actual``'s columns differ from ``contract``'s (names, order, types; nullability
    is not compared: Delta keeps whatever the writer's plan said), or None when they match."""
    expected = [(f.name, f.dataType.simpleString()) for f in contract.fields]
    found = [(f.name, f.dataType.simpleString()) for f in actual.fields]
    if expected == found:
        return None
    want, have = dict(expected), dict(found)
    parts = []
    missing = [f"{n} {t}" for n, t in expected if n not in have]
    unexpected = [f"{n} {t}" for n, t in found if n not in want]
    retyped = [f"{n} is {have[n]} (contract {t})" for n, t in expected if have.get(n, t) != t]
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if unexpected:
        parts.append(f"unexpected column(s) {', '.join(unexpected)}")
    if retyped:
        parts.append(f"column type(s) {', '.join(retyped)}")
    if not parts:
        parts.append(
            f"column order ({', '.join(n for n, _ in found)}) differs from the contract's "
            f"({', '.join(n for n, _ in expected)})"
        )
    return "; ".join(parts)


def table_difference(name: str, actual: StructType) -> str | None:
    """:func:`contract_difference` for table ``name``; None for a table without a contract."""
    contract = SCHEMAS.get(name)
    return contract_difference(contract, actual) if contract is not None else None


def meets_contract(name: str, actual: StructType) -> bool:
    return table_difference(name, actual) is None
