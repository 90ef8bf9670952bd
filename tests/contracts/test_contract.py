"""Contract parsing: the orders contract as specified, and malformed contracts refused with
a message naming the file, the field and what is allowed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import yaml

from lib.contracts.contract import (
    ContractError,
    ContractNotFoundError,
    DataType,
    available_contracts,
    load_contract,
    load_contract_file,
    parse_contract,
)
from lib.engine.transforms import derived_columns
from lib.tools.cli import main
from tests.helpers import REPO

MINIMAL = {
    "dataset": "things",
    "version": 1,
    "format": "csv",
    "columns": [{"name": "id", "type": "string", "required": True}],
}


def _with(**changes: object) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(MINIMAL))
    doc.update(changes)
    return doc


def _column(**fields: object) -> dict:
    return _with(columns=[{"name": "id", "type": "string", **fields}])


def test_orders_v1_declares_the_specified_columns_types_and_partitioning() -> None:
    c = load_contract("orders", 1)
    assert c.ref == "orders/1"
    assert [(col.name, str(col.type), col.required) for col in c.columns] == [
        ("order_id", "string", True),
        ("customer_id", "string", True),
        ("customer_email", "string", False),
        ("product_sku", "string", True),
        ("quantity", "int", True),
        ("unit_price", "decimal(12,2)", True),
        ("currency", "string", True),
        ("order_ts", "timestamp", True),
        ("country", "string", False),
    ]
    assert [(d.name, str(d.type)) for d in c.derived] == [
        ("total_amount", "decimal(18,2)"), ("order_date", "date")]
    assert c.partition_by == ("order_date",)
    assert c.unique_column.name == "order_id"
    assert c.column("customer_email").pii == "sha256"


def test_orders_v1_compiles_to_exactly_the_specified_reason_codes() -> None:
    assert load_contract("orders", 1).reason_codes() == (
        "country.format",
        "currency.enum", "currency.required",
        "customer_email.format",
        "customer_id.required",
        "order_id.conflict", "order_id.length", "order_id.required",
        "order_ts.format", "order_ts.range", "order_ts.required",
        "product_sku.format", "product_sku.required",
        "quantity.range", "quantity.required", "quantity.type",
        "row.malformed",
        "unit_price.precision", "unit_price.range", "unit_price.required", "unit_price.type",
    )


def test_bundled_contracts_are_listed_by_dataset_and_version() -> None:
    assert available_contracts() == {"customers": (1,), "orders": (1, 2)}
    assert load_contract("orders").version == 2  # the latest by default


def test_unknown_dataset_names_the_known_ones() -> None:
    with pytest.raises(ContractNotFoundError, match="no contract for dataset 'nope'; known "
                                                    "datasets: customers, orders"):
        load_contract("nope")


def test_unknown_version_names_the_available_ones() -> None:
    with pytest.raises(ContractNotFoundError, match="no contract 'orders' version 9; "
                                                    "available versions: 1, 2"):
        load_contract("orders", 9)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_column(type="integer"),
         "x.yaml: columns[0].type: unknown type 'integer'; allowed: string, int, bigint, date, "
         "timestamp, decimal(p,s)"),
        (_column(type="decimal(40,2)"),
         "x.yaml: columns[0].type: invalid 'decimal(40,2)': need 1 <= p <= 38 and 0 <= s <= p "
         "in decimal(p,s)"),
        (_column(rules=[{"unique_ish": True}]),
         "x.yaml: columns[0].rules[0].unique_ish: unknown rule 'unique_ish'; allowed: length, "
         "pattern, enum, range"),
        (_column(rules=[{"range": {"min": 1}}]),
         "x.yaml: columns[0].rules[0].range: rule 'range' does not apply to type string; it "
         "applies to: int, bigint, decimal, date, timestamp"),
        (_column(rules=[{"pattern": "([a-z"}]),
         "x.yaml: columns[0].rules[0].pattern: invalid regular expression"),
        (_column(rules=[{"length": {"min": -1}}]),
         "x.yaml: columns[0].rules[0].length.min: expected a non-negative integer, got -1"),
        (_column(normalize="title"),
         "x.yaml: columns[0].normalize: unknown normalizer 'title'; allowed: upper, lower, "
         "collapse_whitespace"),
        (_column(pii="md5"),
         "x.yaml: columns[0].pii: unknown pii method 'md5'; allowed: sha256"),
        (_column(colour="red"),
         "x.yaml: columns[0].colour: unknown field; allowed: name, type, required, unique, "
         "normalize, pii, rules, formats, default, description"),
        (_with(columns=[{"name": "id"}]), "x.yaml: columns[0].type: missing required field"),
        ({k: v for k, v in MINIMAL.items() if k != "dataset"},
         "x.yaml: dataset: missing required field"),
        (_with(format="xml"), "x.yaml: format: unknown format 'xml'; allowed: csv"),
        (_column(unique=True),
         "x.yaml: columns[0].unique: a unique column must also be required (a null id cannot "
         "identify a row); add 'required: true'"),
        (_with(version=0), "x.yaml: version: expected a positive integer, got 0"),
        (_with(max_upload_bytes="1GB"),
         "x.yaml: max_upload_bytes: expected a positive number of bytes, got '1GB'"),
        (_with(partition_by=["day"]),
         "x.yaml: partition_by[0]: unknown column 'day'; columns: id"),
        (_with(columns=[{"name": "id", "type": "string"}, {"name": "id", "type": "int"}]),
         "x.yaml: columns[1].name: duplicate column name 'id'"),
        (_with(columns=[{"name": "Order ID", "type": "string"}]),
         "x.yaml: columns[0].name: invalid column name 'Order ID'"),
        (_column(type="timestamp", rules=[{"range": {"min": 5}}]),
         "x.yaml: columns[0].rules[0].range.min: expected an ISO 8601 string, got 5"),
    ],
)
def test_malformed_contract_names_file_field_and_what_is_allowed(doc: dict, message: str) -> None:
    with pytest.raises(ContractError) as err:
        parse_contract(doc, "x.yaml")
    assert str(err.value).startswith(message)


def test_contract_file_errors_name_the_file(tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(textwrap.dedent("""\
        dataset: things
        version: 1
        format: csv
        columns:
          - name: id
            type: strng
    """))
    with pytest.raises(ContractError, match=rf"^{path}: columns\[0\]\.type: unknown type "
                                            r"'strng'; allowed: string"):
        load_contract_file(path)


def test_invalid_yaml_is_reported_with_the_file(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("dataset: [unclosed\n")
    with pytest.raises(ContractError, match=rf"^{path}: <yaml>: not valid YAML"):
        load_contract_file(path)


def test_a_dataset_size_limit_lowers_the_lake_wide_one_never_raises_it() -> None:
    from lib.upload.checks import upload_limit

    capped = parse_contract(_with(max_upload_bytes=1000), "x.yaml")
    assert capped.max_upload_bytes == 1000
    assert (upload_limit(capped, 5000), upload_limit(capped, 500)) == (1000, 500)
    uncapped = parse_contract(MINIMAL, "x.yaml")
    assert (uncapped.max_upload_bytes, upload_limit(uncapped, 5000)) == (None, 5000)


def test_decimal_type_carries_precision_and_scale() -> None:
    c = parse_contract(_column(type="decimal(12, 2)"), "x.yaml")
    assert c.columns[0].type == DataType("decimal", 12, 2)


def test_contract_module_imports_without_pyspark() -> None:
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "pyspark" or name.startswith("pyspark."):
                    raise ImportError("pyspark is blocked in this test")
        sys.meta_path.insert(0, Block())
        from lib.contracts.contract import load_contract
        from lib.contracts.header import plan_header, parse_header_line
        c = load_contract("orders", 1)
        plan_header(parse_header_line("order_id,customer_id,product_sku,quantity,unit_price,"
                                      "currency,order_ts"), c, "f.csv")
        assert "pyspark" not in sys.modules
        print(len(c.checks()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(len(load_contract("orders", 1).checks()))


def _derived(expression: str) -> dict:
    return _with(derived=[{"name": "d", "type": "string", "expression": expression}])


@pytest.mark.parametrize(("expression", "why"), [
    ("reflect('java.lang.System', 'exit', 1)", "function 'reflect' is not allowed in a derived "
     "column; allowed: abs, add_months, bround, cast, "),
    ("java_method('java.lang.Runtime', 'getRuntime')", "function 'java_method' is not allowed"),
    ("upper(secret)", "unknown column 'secret'; a derived column may read the columns id"),
    ("concat(id, 'x)", "a string opened at character 12 is never closed"),
    ("upper(id", "a parenthesis is opened that is never closed"),
    ("id ||", "the expression ends with '||'"),
])
def test_a_derived_expression_is_checked_whole_at_load(expression, why) -> None:
    with pytest.raises(ContractError) as exc:
        parse_contract(_derived(expression), "x.yaml")
    assert str(exc.value).startswith(
        f"x.yaml: derived[0].expression: {expression!r} is refused: {why}")


def test_a_derived_expression_may_read_columns_and_earlier_derived_ones() -> None:
    doc = _with(derived=[
        {"name": "a", "type": "string", "expression": "upper(trim(id))"},
        {"name": "b", "type": "decimal(18,2)",
         "expression": "CAST(length(a) AS decimal(18, 2)) * 2"},
        {"name": "c", "type": "string",
         "expression": "CASE WHEN b > 1 THEN concat_ws('-', a, 'x') ELSE NULL END"},
    ])
    assert [d.name for d in parse_contract(doc, "x.yaml").derived] == ["a", "b", "c"]


def test_lake_contract_check_refuses_an_expression_that_does_not_parse(tmp_path, capsys) -> None:
    doc = yaml.safe_load((REPO / "lib" / "contracts" / "orders" / "v2.yaml").read_text())
    doc["version"] = 3
    doc["derived"][0]["expression"] = "reflect('java.lang.System', 'exit', 1)"
    bad = tmp_path / "v3.yaml"
    bad.write_text(yaml.safe_dump(doc))
    assert main(["contract", "check", "--file", str(bad)]) == 2
    assert capsys.readouterr().err.startswith(
        f"lake: error: {bad}: derived[0].expression: \"reflect('java.lang.System', 'exit', 1)\" "
        "is refused: function 'reflect' is not allowed in a derived column")
    doc["derived"][0]["expression"] = "quantity * (unit_price +)"
    bad.write_text(yaml.safe_dump(doc))
    assert main(["contract", "check", "--file", str(bad)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{bad}: derived[0].expression: 'quantity * (unit_price +)' does not parse: Required "
        "keyword: 'expression' missing for <class 'sqlglot.expressions.core.Add'>")


def test_the_job_refuses_a_contract_spark_cannot_parse_before_claiming(spark) -> None:
    contract = parse_contract(_derived("upper(id) upper(id)"), "x.yaml")
    with pytest.raises(ContractError) as exc:
        derived_columns(contract)
    assert str(exc.value).startswith(
        "x.yaml: derived[0].expression: 'upper(id) upper(id)' does not parse: ")


def test_quality_thresholds_are_parsed_per_upload_and_per_reason_code() -> None:
    from lib.contracts.contract import Threshold

    contract = parse_contract(_with(quality={"quarantined": {"warn": 0.05, "fail": 0.5},
                                             "rules": {"id.required": {"fail": 0}}}), "x.yaml")
    assert contract.quality == (Threshold("quarantined", 0.05, 0.5),
                                Threshold("id.required", None, 0.0))
    t = contract.quality[0]
    assert [t.outcome(s) for s in (0.0, 0.05, 0.051, 0.5, 0.51)] == [
        "ok", "ok", "warn", "warn", "fail"]  # above a threshold trips it, not at it
    assert parse_contract(MINIMAL, "x.yaml").quality == ()


@pytest.mark.parametrize(("quality", "message"), [
    ([0.1], "x.yaml: quality: expected a mapping: quarantined (the share of an upload's rows "
            "quarantined) and/or rules (per reason code)"),
    ({"quarantine": {"warn": 0.1}}, "x.yaml: quality.quarantine: unknown field; allowed: "
                                    "quarantined, rules"),
    ({"quarantined": {"warn": 5}}, "x.yaml: quality.quarantined.warn: expected a share of the "
                                   "rows read from 0 to 1 (0.05 is 5%), got 5"),
    ({"quarantined": {"warn": 0.5, "fail": 0.1}},
     "x.yaml: quality.quarantined: warn (0.5) is above fail (0.1): a warning must come first"),
    ({"quarantined": {}}, "x.yaml: quality.quarantined: expected warn and/or fail"),
    ({"quarantined": {"error": 0.1}}, "x.yaml: quality.quarantined.error: unknown field; "
                                      "allowed: warn, fail"),
    ({"rules": {"id.requird": {"warn": 0.1}}},
     "x.yaml: quality.rules.id.requird: things has no reason code 'id.requird'; did you mean "
     "id.required? its codes: id.required, row.malformed"),
])
def test_malformed_quality_thresholds_are_named(quality, message) -> None:
    with pytest.raises(ContractError) as err:
        parse_contract(_with(quality=quality), "x.yaml")
    assert str(err.value).startswith(message), str(err.value)
