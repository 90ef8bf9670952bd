"""AWS resources for moto-backed tests, built from the CloudFormation templates' own
definitions so a test can never pass against a table or queue the stacks do not create."""

from __future__ import annotations

from typing import Any

from lib.tools.infra import FOUNDATION_PATH, load_template

REGION = "us-east-1"
LEDGER_TABLE = "lake-test-ledger"


def foundation_resource(name: str) -> dict:
    return load_template(FOUNDATION_PATH)["Resources"][name]["Properties"]


def create_ledger_table(dynamodb: Any, name: str = LEDGER_TABLE) -> str:
    """The ledger table exactly as ``LedgerTable`` in infra/foundation.yaml declares its keys,
    index and TTL."""
    props = foundation_resource("LedgerTable")
    dynamodb.create_table(
        TableName=name, BillingMode=props["BillingMode"],
        AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
    ttl = props["TimeToLiveSpecification"]
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name
