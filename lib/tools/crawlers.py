"""Crawler definitions (``crawlers/*.yaml``): what a Glue crawler catalogues and how.

One definition per lake zone; each target is one dataset folder, so each dataset is its own
table (a crawler pointed at the zone root could group datasets into one table). The same
definition drives the Glue crawler of the CloudFormation templates and the local crawl
(:mod:`lib.tools.crawl`). Field values are the AWS ones. Pure Python: no Spark.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lib.errors import LakeError
from lib.tools.repo import REPO_ROOT

CRAWLERS_DIR_ENV = "LAKE_CRAWLERS_DIR"
ZONES = ("clean", "quarantine")
UPDATE_BEHAVIORS = ("UPDATE_IN_DATABASE", "LOG")
DELETE_BEHAVIORS = ("LOG", "DELETE_FROM_DATABASE", "DEPRECATE_IN_DATABASE")
RECRAWL_BEHAVIORS = ("CRAWL_EVERYTHING", "CRAWL_NEW_FOLDERS_ONLY")
_KEYS = ("name", "description", "zone", "database", "table_prefix", "targets", "exclusions",
         "schema_change_policy", "recrawl_policy", "partitions", "table_grouping")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class CrawlerDefinitionError(LakeError):
    """A crawler definition file is malformed: the file, the field and what is allowed."""

    default_code = "crawler.invalid"

    def __init__(self, source: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", source=source)


@dataclass(frozen=True)
class CrawlerDefinition:
    name: str
    zone: str
    database: str
    targets: tuple[str, ...]  # dataset names; table = table_prefix + dataset
    exclusions: tuple[str, ...]
    update_behavior: str
    delete_behavior: str
    recrawl_behavior: str
    table_prefix: str = ""
    description: str = ""
    partitions: str = "InheritFromTable"
    table_grouping: str = "CombineCompatibleSchemas"
    source: str = "<crawler>"

    def table(self, dataset: str) -> str:
        return f"{self.table_prefix}{dataset}"

    def glue_configuration(self) -> str:
        """The crawler's ``Configuration`` JSON for AWS::Glue::Crawler."""
        return json.dumps({
            "Version": 1.0,
            "CrawlerOutput": {
                "Partitions": {"AddOrUpdateBehavior": self.partitions},
                "Tables": {"AddOrUpdateBehavior": "MergeNewColumns"},
            },
            "Grouping": {"TableGroupingPolicy": self.table_grouping},
        }, sort_keys=True)


def _one_of(obj: dict, key: str, allowed: tuple[str, ...], source: str, where: str) -> str:
    value = obj.get(key)
    if value not in allowed:
        raise CrawlerDefinitionError(source, where, f"expected one of {', '.join(allowed)}, "
                                     f"got {value!r}")
    return value


def parse_crawler(data: Any, source: str = "<crawler>") -> CrawlerDefinition:
    if not isinstance(data, dict):
        raise CrawlerDefinitionError(source, "<root>", "expected a mapping")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise CrawlerDefinitionError(source, unknown[0], f"unknown field; allowed: "
                                     f"{', '.join(_KEYS)}")
    for key in ("name", "database"):
        if not isinstance(data.get(key), str) or not _NAME_RE.match(data[key]):
            raise CrawlerDefinitionError(source, key, "expected lower-case letters, digits and "
                                         f"underscores, got {data.get(key)!r}")
    zone = _one_of(data, "zone", ZONES, source, "zone")
    targets_raw = data.get("targets")
    if not isinstance(targets_raw, list) or not targets_raw:
        raise CrawlerDefinitionError(source, "targets", "expected a non-empty list of "
                                     "{dataset: NAME}")
    targets = []
    for i, t in enumerate(targets_raw):
        if not isinstance(t, dict) or set(t) != {"dataset"} or not _NAME_RE.match(
                str(t["dataset"])):
            raise CrawlerDefinitionError(source, f"targets[{i}]", f"expected {{dataset: NAME}}, "
                                         f"got {t!r}")
        targets.append(t["dataset"])
    if len(set(targets)) != len(targets):
        raise CrawlerDefinitionError(source, "targets", "a dataset is listed twice")
    exclusions = data.get("exclusions") or []
    if not isinstance(exclusions, list) or not all(isinstance(e, str) for e in exclusions):
        raise CrawlerDefinitionError(source, "exclusions", "expected a list of glob patterns")
    policy = data.get("schema_change_policy")
    if not isinstance(policy, dict):
        raise CrawlerDefinitionError(source, "schema_change_policy", "expected a mapping with "
                                     "update_behavior and delete_behavior")
    update = _one_of(policy, "update_behavior", UPDATE_BEHAVIORS, source,
                     "schema_change_policy.update_behavior")
    delete = _one_of(policy, "delete_behavior", DELETE_BEHAVIORS, source,
                     "schema_change_policy.delete_behavior")
    recrawl = _one_of(data, "recrawl_policy", RECRAWL_BEHAVIORS, source, "recrawl_policy")
    if recrawl == "CRAWL_NEW_FOLDERS_ONLY" and (update, delete) != ("LOG", "LOG"):
        raise CrawlerDefinitionError(source, "recrawl_policy", "CRAWL_NEW_FOLDERS_ONLY needs "
                                     "update_behavior LOG and delete_behavior LOG (as on AWS); "
                                     "use CRAWL_EVERYTHING to add new columns")
    partitions = _one_of(data, "partitions", ("InheritFromTable",), source, "partitions")
    grouping = _one_of(data, "table_grouping", ("CombineCompatibleSchemas",), source,
                       "table_grouping")
    prefix = data.get("table_prefix") or ""
    if not isinstance(prefix, str) or (prefix and not _NAME_RE.match(prefix)):
        raise CrawlerDefinitionError(source, "table_prefix", f"expected lower-case letters, "
                                     f"digits and underscores, got {prefix!r}")
    return CrawlerDefinition(
        name=data["name"], zone=zone, database=data["database"], targets=tuple(targets),
        exclusions=tuple(exclusions), update_behavior=update, delete_behavior=delete,
        recrawl_behavior=recrawl, table_prefix=prefix,
        description=str(data.get("description") or ""), partitions=partitions,
        table_grouping=grouping, source=source)


def crawlers_dir() -> Path:
    """``$LAKE_CRAWLERS_DIR``, else ``crawlers/`` beside ``lib/``."""
    explicit = os.environ.get(CRAWLERS_DIR_ENV)
    return Path(explicit) if explicit else REPO_ROOT / "crawlers"


def load_crawlers(directory: Path | None = None) -> dict[str, CrawlerDefinition]:
    """Every ``*.yaml`` definition in ``directory``, by name."""
    folder = directory or crawlers_dir()
    out: dict[str, CrawlerDefinition] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise CrawlerDefinitionError(str(path), "<yaml>", f"not valid YAML: {exc}") from exc
        crawler = parse_crawler(data, str(path))
        if crawler.name in out:
            raise CrawlerDefinitionError(str(path), "name", f"crawler {crawler.name!r} is "
                                         f"also defined in {out[crawler.name].source}")
        out[crawler.name] = crawler
    if not out:
        raise CrawlerDefinitionError(str(folder), "<dir>", "no crawler definitions (*.yaml)")
    return out
