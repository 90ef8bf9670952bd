"""Schema evolution: may a new contract version write into the same catalog tables as the
one before it?

All versions of a dataset share one clean table and one quarantine table, and a query reads
old and new partitions together. A new version is compatible when every row the old
version wrote still reads the same under the new table schema:

* allowed: a new **optional** column (old rows read it as null), a new derived column,
  changed rules, normalisers or descriptions (they decide which rows are clean, not how
  stored rows read);
* breaking: a removed column, a changed type, a new **required** column (old rows would
  break it), a column made required that was optional (same), a change to partitioning,
  including the expression of a derived column the table is partitioned by (the same row
  would land in another partition than its old copy, and a reprocess would leave both), to
  PII handling (one column would mix hashes and clear text), or a different dataset;
* said, not refused: a changed expression of another derived column (rows written before
  keep the values the old expression gave).

A breaking change belongs in a new dataset (a new table), not a new version. Pure Python:
no Spark needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lib.contracts.contract import Contract, available_contracts, load_contract


@dataclass
class Compatibility:
    old: str
    new: str
    breaking: list[str] = field(default_factory=list)
    additive: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # allowed, but worth knowing

    @property
    def ok(self) -> bool:
        return not self.breaking

    def describe(self) -> str:
        head = f"{self.old} -> {self.new}: " + ("compatible" if self.ok else "BREAKING")
        lines = [head]
        lines += [f"  breaking: {b}" for b in self.breaking]
        lines += [f"  added:    {a}" for a in self.additive]
        lines += [f"  changed:  {c}" for c in self.changed]
        return "\n".join(lines)


def _types(c: Contract) -> dict[str, str]:
    out = {col.name: str(col.type) for col in c.columns}
    out.update({d.name: str(d.type) for d in c.derived})
    return out


def _expr(text: str) -> str:
    """An expression with its spacing normalised: ``to_date( order_ts )`` is
    ``to_date(order_ts)``."""
    return "".join(text.split())


def check_compatible(old: Contract, new: Contract) -> Compatibility:
    """What changed from ``old`` to ``new`` and whether it breaks the shared tables."""
    result = Compatibility(old.ref, new.ref)
    broke = result.breaking.append
    if old.dataset != new.dataset:
        broke(f"dataset changed from {old.dataset!r} to {new.dataset!r}; contracts of "
              "different datasets are different tables")
        return result
    old_types, new_types = _types(old), _types(new)
    for name, t in old_types.items():
        if name not in new_types:
            broke(f"column {name} ({t}) removed; rows already written carry it, and queries "
                  "reading it would break (keep it, optional, or start a new dataset)")
        elif new_types[name] != t:
            broke(f"column {name} changed type from {t} to {new_types[name]}; partitions "
                  f"written as {t} would no longer match the table")
    old_cols = {c.name: c for c in old.columns}
    for col in new.columns:
        before = old_cols.get(col.name)
        if before is None:
            if col.required:
                broke(f"new column {col.name} is required; rows and files of {old.ref} "
                      "do not have it (add it as optional)")
            else:
                result.additive.append(f"optional column {col.name} ({col.type}); rows "
                                       f"written by {old.ref} read it as null")
            continue
        if col.required and not before.required:
            broke(f"column {col.name} became required; rows of {old.ref} may hold null")
        if col.pii != before.pii:
            broke(f"column {col.name} changed PII handling from {before.pii or 'none'} to "
                  f"{col.pii or 'none'}; one column would mix both")
    old_derived = {d.name: d for d in old.derived}
    for d in new.derived:
        before_d = old_derived.get(d.name)
        if d.name not in old_types and before_d is None:
            result.additive.append(f"derived column {d.name} ({d.type}); rows written by "
                                   f"{old.ref} read it as null")
        elif before_d is not None and _expr(before_d.expression) != _expr(d.expression):
            if d.name in new.partition_by:
                broke(f"derived column {d.name} places rows in partitions, and its expression "
                      f"changed from {before_d.expression!r} to {d.expression!r}; the same row "
                      "would land in another partition than its copy written by "
                      f"{old.ref}, and a reprocess would leave both (keep the expression, or "
                      "start a new dataset)")
            else:
                result.changed.append(f"derived column {d.name}: expression "
                                      f"{before_d.expression!r} -> {d.expression!r}; rows "
                                      f"written by {old.ref} keep the values the old one gave")
    if old.partition_by != new.partition_by:
        broke(f"partitioning changed from {list(old.partition_by)} to "
              f"{list(new.partition_by)}; the table's partition keys cannot change")
    return result


def check_dataset(dataset: str) -> list[Compatibility]:
    """Every consecutive pair of the dataset's bundled versions."""
    versions = available_contracts()[dataset]
    return [check_compatible(load_contract(dataset, a), load_contract(dataset, b))
            for a, b in zip(versions, versions[1:], strict=False)]
