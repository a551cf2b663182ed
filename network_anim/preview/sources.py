"""What a preview shows: a template with an urgency, a campaign's step, or a challenge's
message, each as the campaign step the planner takes (a one-off template is the one-step
broadcast campaign ``netanim broadcast`` plans)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from network_anim.app import App
from network_anim.config.challenge_campaigns import campaign_id
from network_anim.config.settings import Audience, Campaign, Step, TeamMember
from network_anim.domain import Level, MessageKind, Urgency
from network_anim.engine.checks import template_problems
from network_anim.errors import UserError
from network_anim.planning.messages import broadcast_campaign, provided_variables

# The parts of a challenge's communication (config/challenge_campaigns.py).
CHALLENGE_MESSAGES = (
    "launch",
    "reminder",
    "invitation",
    "digest",
    "last-week",
    "results",
    "welcome",
    "milestone",
)


@dataclass(frozen=True, slots=True)
class Source:
    campaign: Campaign
    step: Step
    audience: Audience
    label: str  # what routing.txt and the summary call it


def template_source(
    app: App,
    *,
    template: str,
    urgency: Urgency,
    kind: MessageKind,
    level: Level,
    variables: Mapping[str, str],
    audience: str,
) -> Source:
    audience_cfg = audience_named(app, audience)
    campaign = broadcast_campaign(
        audience_cfg,
        template=template,
        urgency=urgency,
        kind=kind,
        level=level,
        variables=variables,
    )
    label = f"template {template}, urgency {urgency}, {kind} (one-off broadcast)"
    return Source(campaign, campaign.steps[0], audience_cfg, label)


def campaign_source(app: App, key: str, step: str | None) -> Source:
    campaign = app.config.campaign(key)
    if campaign is None:
        known = ", ".join(c.id for c in app.config.campaigns) or "none defined"
        raise UserError(f"unknown campaign {key!r}", [f"campaigns in the config: {known}"])
    chosen = _step(campaign, step)
    label = (
        f"campaign {campaign.id}, step {chosen.name} (template {chosen.template}, "
        f"urgency {chosen.urgency}, {chosen.kind})"
    )
    return Source(campaign, chosen, app.config.audience(campaign.audience), label)


def challenge_source(app: App, key: str, message: str, step: str | None) -> Source:
    challenge = app.config.challenge(key)
    if message not in CHALLENGE_MESSAGES:
        raise UserError(
            f"challenge {key}: unknown message {message!r}",
            [f"a challenge's messages: {', '.join(CHALLENGE_MESSAGES)}"],
        )
    if app.config.campaign(campaign_id(challenge, message)) is None:
        raise UserError(
            f"challenge {key} sends no {message!r} message",
            ["'invitation' goes only to challenges with registration = \"required\""],
        )
    return campaign_source(app, campaign_id(challenge, message), step)


def check_templates(app: App, source: Source) -> None:
    """Refuse a template that cannot go out as the step gives it (a variable it does not
    provide, a promotional SMS without its STOP mention), before anything is planned."""
    step = source.step
    problems = template_problems(
        app.config,
        app.templates,
        template=step.template,
        urgency=step.urgency,
        kind=step.kind,
        variables=provided_variables(app.config, app.variables, source.campaign),
        today=app.clock.now().date(),
        step=f"{source.campaign.id}.{step.name}",
    )
    if problems:
        raise UserError(f"template {step.template!r} cannot be sent ({source.label})", problems)


def audience_named(app: App, name: str) -> Audience:
    """An audience of the config; 'all' is every active contact unless the config says
    otherwise (as for ``netanim broadcast``)."""
    if name == "all" and name not in {a.name for a in app.config.audiences}:
        return Audience(name="all", description="every active contact")
    return app.config.audience(name)


def team_member(app: App, name: str) -> TeamMember:
    for member in app.config.team:
        if member.name == name:
            return member
    known = ", ".join(m.name for m in app.config.team) or "none defined"
    raise UserError(
        f"unknown team member {name!r}",
        [f"[[team]] in the config: {known}", "add one: [[team]] name, email, mobile"],
    )


def _step(campaign: Campaign, name: str | None) -> Step:
    if name is None:
        return campaign.steps[0]
    for step in campaign.steps:
        if step.name == name:
            return step
    known = ", ".join(s.name for s in campaign.steps)
    raise UserError(f"campaign {campaign.id} has no step {name!r}", [f"its steps: {known}"])
