"""Partner credentials, endpoints and parsing options, read through Powertools Parameters (cached, never logged).

Names (agreed with template.yaml; both prefixes come from Settings):
- secret `<partner_secrets_prefix><partner>`: JSON `{"app_key", "app_secret"}` (AliExpress, optionally
  `"sign_method"`) or `{"client_id", "client_secret"}` (Admitad);
- SSM parameter `<partner_parameters_prefix><partner>/endpoint`: the API's base URL (AliExpress: the sync gateway URL);
- optional SSM parameter `<partner_parameters_prefix><partner>/options`: JSON of `PartnerOptions` (money units,
  usd_rates, timezone);
- optional SSM parameter `<partner_parameters_prefix><partner>/columns`: JSON of `PartnerOptions` for CSV drops (the
  column map, status words, delimiter, timezone).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from accrual.partners.options import PartnerOptions, options_from_json
from accrual.settings import Settings

MAX_AGE = 300  # seconds a credential or endpoint is reused before it is read again (rotation takes effect)


def providers(settings: Settings) -> tuple[SecretsProvider, SSMProvider]:
    """The providers made once with these Settings (see accrual.settings): their max_age cache outlives a call."""
    return settings.secrets_provider, settings.ssm_provider


def secret_name(settings: Settings, partner: str) -> str:
    return f"{settings.partner_secrets_prefix}{partner}"


def parameter_name(settings: Settings, partner: str, leaf: str) -> str:
    return f"{settings.partner_parameters_prefix}{partner}/{leaf}"


def partner_credentials(settings: Settings, partner: str, *, max_age: int = MAX_AGE) -> dict[str, Any]:
    secrets, _ = providers(settings)
    name = secret_name(settings, partner)
    try:
        value = secrets.get(name, transform="json", max_age=max_age)
    except GetParameterError:
        raise RuntimeError(f"partner credentials secret {name!r} is missing or unreadable") from None
    if not isinstance(value, dict):
        raise RuntimeError(f"partner credentials secret {name!r} is not a JSON object")
    return value


def partner_endpoint(settings: Settings, partner: str, *, max_age: int = MAX_AGE) -> str:
    _, ssm = providers(settings)
    name = parameter_name(settings, partner, "endpoint")
    try:
        return str(ssm.get(name, max_age=max_age)).strip()
    except GetParameterError:
        raise RuntimeError(f"partner endpoint parameter {name!r} is missing") from None


def _optional_options(settings: Settings, partner: str, leaf: str, max_age: int) -> PartnerOptions:
    _, ssm = providers(settings)
    name = parameter_name(settings, partner, leaf)
    try:
        document = ssm.get(name, max_age=max_age)
    except GetParameterError:
        return PartnerOptions()
    return options_from_json(document, source=f"SSM parameter {name}")


def partner_options(settings: Settings, partner: str, *, max_age: int = MAX_AGE) -> PartnerOptions:
    return _optional_options(settings, partner, "options", max_age)


def drop_options(settings: Settings, partner: str, *, max_age: int = MAX_AGE) -> PartnerOptions:
    return _optional_options(settings, partner, "columns", max_age)


class SsmPartnerDirectory:
    """The partners' configuration in Secrets Manager and SSM (the port `accrual.ports.PartnerDirectory`), through
    the providers made once per Settings (their `max_age` cache serves every later call)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def options(self, partner: str) -> PartnerOptions:
        return partner_options(self.settings, partner)

    def drop_options(self, partner: str) -> PartnerOptions:
        return drop_options(self.settings, partner)

    def credentials(self, partner: str) -> dict[str, Any]:
        return partner_credentials(self.settings, partner)

    def endpoint(self, partner: str) -> str:
        return partner_endpoint(self.settings, partner)

    def column_map_name(self, partner: str) -> str:
        return parameter_name(self.settings, partner, "columns")
