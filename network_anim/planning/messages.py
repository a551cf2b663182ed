"""One constructor for a step's message: what a scheduled firing, a replayed missed
firing, a sequence step and a broadcast hand the planner.

Besides the step's own fields it attaches each contact's variables (a participant's
rank and points...) from the sources the running engine was built with
(``App.variables``), computed for every contact of the firing at once, in the firing's
transaction. A variable a template uses and neither the campaign's ``vars`` nor a source
provides is an error (``netanim validate``, then ``StrictUndefined`` at render), never a
placeholder.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session

from network_anim.app import App, ContactVariables
from network_anim.config.settings import Audience as AudienceConfig
from network_anim.config.settings import Campaign as CampaignConfig
from network_anim.config.settings import Config, Step
from network_anim.domain import Urgency
from network_anim.planning.planner import MessageRequest


def step_request(
    app: App,
    session: Session,
    campaign: CampaignConfig,
    step: Step,
    *,
    occurrence: str,
    due_at: datetime | None,
    contact_ids: Collection[int] | None = None,
    urgency: Urgency | None = None,
    audience: AudienceConfig | None = None,
    personal: Mapping[int, Mapping[str, Any]] | None = None,
) -> MessageRequest:
    """The message of one step of ``campaign`` for one occurrence.

    ``contact_ids``: the contacts it is planned for (a sequence step's batch); ``None``
    for the campaign's whole audience. ``urgency``: an engagement branch's urgency
    instead of the step's (the message is then its own variant, ``step~urgency``).
    ``audience``: an audience outside the config (a broadcast to everyone).
    ``personal``: the contacts' variables already computed for this firing (its other
    steps share them: one set of queries per firing)."""
    urgency = urgency or step.urgency
    variant = "" if urgency == step.urgency else f"~{urgency}"
    return MessageRequest(
        campaign_key=campaign.id,
        campaign_name=campaign.name,
        campaign_kind=campaign.kind,
        step=step.name + variant,
        occurrence=occurrence,
        audience=audience or app.config.audience(campaign.audience),
        urgency=urgency,
        template=step.template,
        kind=step.kind,
        level=campaign.level,
        variables=campaign.vars,
        attachments=tuple(app.loaded.resolve(path) for path in step.attachments),
        due_at=due_at,
        contact_vars=(
            personal
            if personal is not None
            else contact_variables(app, session, campaign, contact_ids)
        ),
    )


def contact_variables(
    app: App,
    session: Session,
    campaign: CampaignConfig,
    contact_ids: Collection[int] | None,
) -> dict[int, dict[str, Any]]:
    """Each contact's variables from every source serving the campaign, merged."""
    merged: dict[int, dict[str, Any]] = {}
    for source in app.variables:
        if not source.provides(app.config, campaign):
            continue  # nothing to compute: no query for campaigns a source does not serve
        for contact_id, values in source.values(app, session, campaign, contact_ids).items():
            merged.setdefault(contact_id, {}).update(values)
    return merged


def provided_variables(
    config: Config, sources: Collection[ContactVariables], campaign: CampaignConfig
) -> dict[str, Any]:
    """Every variable a step of ``campaign`` is given besides the message's standard
    context: the campaign's ``vars``, then the sources' (with their sample values)."""
    provided: dict[str, Any] = dict(campaign.vars)
    for source in sources:
        provided.update(source.provides(config, campaign))
    return provided


def broadcast_campaign(
    audience: AudienceConfig,
    *,
    template: str,
    urgency: Urgency,
    kind: Any,
    level: Any,
    variables: Mapping[str, Any],
    attachments: tuple[Any, ...] = (),
) -> CampaignConfig:
    """A one-off broadcast as the one-step campaign it is, so it takes the same
    constructor. Built unvalidated: its step is named after the template, which the
    command has checked already, and may not follow the config's step-name pattern."""
    step = Step.model_construct(
        name=template,
        template=template,
        urgency=urgency,
        kind=kind,
        attachments=tuple(attachments),
    )
    return CampaignConfig.model_construct(
        id="broadcast",
        name="One-off broadcasts",
        kind="broadcast",
        audience=audience.name,
        steps=(step,),
        level=level,
        vars=dict(variables),
    )
