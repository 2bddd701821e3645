"""Dagster resources: the Clever API credentials, the warehouse and the rules profile, from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from dagster import ConfigurableResource, EnvVar, Failure
from dagster_dlt import DagsterDltResource
from pydantic import SecretStr

from roster_pipeline.clever.client import CleverClient, discover_district_tokens
from roster_pipeline.clever.settings import MAX_PAGE_SIZE
from roster_pipeline.engine.raw_load import CleverAccess
from roster_pipeline.modeling.rules import DEFAULT_RULES_PATH, RulesProfile
from roster_pipeline.settings import (
    DEFAULT_API_BASE_URL,
    DEFAULT_OAUTH_TOKENS_URL,
    CleverSettings,
    clever_timeout,
    validate_district_id,
)
from roster_pipeline.warehouse.connection import Warehouse


class CleverResource(ConfigurableResource):
    """Where the Clever API is and how to find each district's token.

    Secrets are given as `EnvVar`s, so the UI and run config show the variable's name only.
    """

    api_base_url: str = DEFAULT_API_BASE_URL
    oauth_tokens_url: str = DEFAULT_OAUTH_TOKENS_URL
    client_id: Optional[str] = None
    client_secret: Optional[str] = None
    district_tokens: Optional[str] = None
    page_size: int = MAX_PAGE_SIZE
    timeout_seconds: float = 60.0  # per request; a slower page is retried with backoff

    def settings(self) -> CleverSettings:
        env = {
            "CLEVER_API_BASE_URL": self.api_base_url, "CLEVER_OAUTH_TOKENS_URL": self.oauth_tokens_url,
            "CLEVER_CLIENT_ID": self.client_id or "", "CLEVER_CLIENT_SECRET": self.client_secret or "",
            "CLEVER_DISTRICT_TOKENS": self.district_tokens or "",
        }
        return CleverSettings.from_env(env)

    def district_tokens_by_id(self) -> dict[str, SecretStr]:
        return discover_district_tokens(self.settings())

    def token_for(self, district_id: str) -> SecretStr:
        validate_district_id(district_id, "district partition")
        token = self.district_tokens_by_id().get(district_id)
        if token is None:
            raise Failure(
                f"District {district_id} has no Clever token: it is not in CLEVER_DISTRICT_TOKENS or it "
                "de-authorized the application; its data is kept until `roster-pipeline forget` removes it.")
        return token

    def access_for(self, district_id: str) -> CleverAccess:
        """Where Clever is and the district's own token, for the engine's raw load."""
        return CleverAccess(self.token_for(district_id), self.api_base_url, self.page_size, self.timeout_seconds)

    def client_for(self, district_id: str, token: SecretStr) -> CleverClient:
        return CleverClient(self.api_base_url, token, district_id=district_id, page_size=self.page_size,
                            timeout=self.timeout_seconds)


class WarehouseResource(ConfigurableResource):
    """The warehouse (`ROSTER_WAREHOUSE`: DuckDB file or Postgres) and the dlt state folder."""

    url: str
    dlt_dir: str

    def warehouse(self) -> Warehouse:
        return Warehouse(self.url, Path(self.dlt_dir))


class RulesResource(ConfigurableResource):
    """The rules profile file (`ROSTER_RULES`); None means the bundled default."""

    path: Optional[str] = None

    def profile(self) -> RulesProfile:
        return RulesProfile.load(self.path or DEFAULT_RULES_PATH)


def _secret(name: str):
    """An EnvVar when the variable is set (the UI shows its name, never its value), else None."""
    return EnvVar(name) if os.environ.get(name) else None


def build_resources(warehouse: Warehouse, rules_path: str | None) -> dict:
    """The resources every run gets, from the environment (secrets as `EnvVar`s)."""
    return {
        "rules": RulesResource(path=rules_path),
        "dlt": DagsterDltResource(),
        "clever": CleverResource(
            api_base_url=os.environ.get("CLEVER_API_BASE_URL") or DEFAULT_API_BASE_URL,
            oauth_tokens_url=os.environ.get("CLEVER_OAUTH_TOKENS_URL") or DEFAULT_OAUTH_TOKENS_URL,
            client_id=os.environ.get("CLEVER_CLIENT_ID") or None,
            client_secret=_secret("CLEVER_CLIENT_SECRET"),
            district_tokens=_secret("CLEVER_DISTRICT_TOKENS"),
            timeout_seconds=clever_timeout(),
        ),
        # The URL may hold a Postgres password: pass it as an EnvVar when it is set.
        "warehouse": WarehouseResource(url=_secret("ROSTER_WAREHOUSE") or warehouse.url, dlt_dir=str(warehouse.dlt_dir)),
    }
