"""Checks run before anything is planned: every template a message may take must render.

The router may send a message on its urgency's channels, their fallbacks, and the
stand-ins for email (SMS or print): each of those needs the template, in the default
language at least, and it must render with the variables given. Found here, a mistake
costs a message to the terminal; found at dispatch time, it costs a recipient.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from network_anim.app import ContactVariables
from network_anim.compose.attachments import check_files
from network_anim.compose.composer import contact_context, message_context, sms_mention_problem
from network_anim.compose.rendering import TemplateStore
from network_anim.config.audience_conditions import challenges_named
from network_anim.config.settings import Config, UrgencyPolicy
from network_anim.db.models import Campaign, Company, Contact, Message
from network_anim.domain import MessageKind, Urgency
from network_anim.errors import UserError
from network_anim.planning.messages import provided_variables


def channels_for(policy: UrgencyPolicy) -> list[str]:
    channels = ["intranet", *policy.send, *policy.fallback]
    if "email" in channels:
        channels += ["sms", "print"]  # the stand-ins for a shared mailbox or no email
    return list(dict.fromkeys(channels))


def sample_context(config: Config, variables: Mapping[str, Any], today: date) -> dict[str, Any]:
    """What a template sees, for a made-up contact: the same keys as a real send, dated
    ``today`` (the engine clock's day, as a real send is)."""
    base = config.engine.base_url.rstrip("/")
    campaign = Campaign(key="sample", name="Sample campaign", kind="broadcast")
    message = Message(
        campaign_id=0,
        step="sample",
        occurrence="sample",
        urgency="info",
        kind="marketing",
        template="sample",
        variables=dict(variables),
    )
    contact = Contact(
        external_id="C-SAMPLE",
        company_id=0,
        civility="Mme",
        first_name="Camille",
        last_name="Martin",
        role="sales",
        level="seller",
    )
    company = Company(
        external_id="CO-SAMPLE",
        name="Exemple Distribution",
        city="Lyon",
        region="Auvergne-Rhône-Alpes",
    )
    return {
        **message_context(config, campaign, message, today),
        **contact_context(contact, company),
        "post_url": f"{base}/p/sample",
        "unsubscribe_url": f"{base}/u/sample",
    }


def template_problems(
    config: Config,
    templates: TemplateStore,
    *,
    template: str,
    urgency: Urgency,
    kind: MessageKind,
    variables: Mapping[str, Any],
    today: date,
    where: str = "",
    step: str = "this message",
) -> list[str]:
    """What keeps ``template`` from going out on any channel the urgency may take;
    ``step`` names the message in a missing variable's problem."""
    prefix = f"{where}: " if where else ""
    problems: list[str] = []
    context = sample_context(config, variables, today)
    for channel in channels_for(config.routing.urgencies[urgency]):
        for language in sorted(templates.languages(channel, template)) or [
            templates.default_language
        ]:
            missing = missing_variables(templates, channel, template, language, context, step)
            if missing:
                problems += [f"{prefix}{problem}" for problem in missing]
                break  # the render would only fail on the same variable
            try:
                rendered = templates.render(channel, template, language, context)
            except UserError as exc:
                hints = "; ".join(p.strip() for p in exc.problems)
                problems.append(prefix + exc.summary + (f" ({hints})" if hints else ""))
                break
            if channel == "sms" and kind == MessageKind.MARKETING:
                problem = sms_mention_problem(rendered.text, config.channels.sms.sender_name)
                if problem:
                    problems.append(f"{prefix}templates/sms/{template}.{language}.txt: {problem}")
    return problems


def missing_variables(
    templates: TemplateStore,
    channel: str,
    template: str,
    language: str,
    context: Mapping[str, Any],
    step: str = "this message",
) -> list[str]:
    """Each variable the template (and the layouts it extends or includes) reads that
    the context does not give, named with the file and line that read it. Found by
    reading the templates, not by rendering: a variable used only in one branch of an
    ``if`` counts too, as it would fail the day that branch is taken."""
    known = set(context) | set(templates.env.globals)
    missing: list[str] = []
    for ext in ("txt", "html") if channel == "email" else ("txt",):
        for lang in dict.fromkeys((language, templates.default_language)):
            name = f"{channel}/{template}.{lang}.{ext}"
            if (templates.directory / name).is_file():
                for variable, (path, line) in sorted(_read_variables(templates, name).items()):
                    if variable not in known:
                        missing.append(
                            f"{templates.directory / path}:{line}: {variable!r} is undefined: "
                            f"{step} (template {template}) does not provide it; add "
                            f"{variable} to the campaign's vars (--var {variable}=... for a "
                            "broadcast), or, for a participant's standing (rank, rank_label, "
                            "points, participants, movement), address the campaign to a "
                            "challenge's registered participants"
                        )
                break
    return missing


def _read_variables(templates: TemplateStore, name: str) -> dict[str, tuple[str, int]]:
    """Variable -> (file, line) of its first read in ``name`` and what it pulls in."""
    from jinja2 import TemplateSyntaxError, meta, nodes

    found: dict[str, tuple[str, int]] = {}
    pending, seen = [name], set()
    while pending:
        path = pending.pop()
        if path in seen or not (templates.directory / path).is_file():
            continue
        seen.add(path)
        try:
            tree = templates.env.parse((templates.directory / path).read_text(encoding="utf-8"))
        except TemplateSyntaxError:
            continue  # the render reports it, with its line
        undeclared = meta.find_undeclared_variables(tree)
        for node in tree.find_all(nodes.Name):
            if node.name in undeclared and node.ctx == "load":
                found.setdefault(node.name, (path, node.lineno))
        pending += [ref for ref in meta.find_referenced_templates(tree) if ref]
    return found


def config_problems(
    config: Config,
    templates: TemplateStore,
    base_dir: Path | None = None,
    *,
    today: date,
    sources: Collection[ContactVariables] = (),
) -> list[str]:
    """Everything ``netanim validate`` checks beyond the schema itself; templates render
    for a sample contact on ``today`` (the engine clock's day), with the variables each
    step gets: its campaign's ``vars`` and what the per-contact ``sources`` give it."""
    problems: list[str] = challenge_problems(config)
    for i, campaign in enumerate(config.campaigns):
        for j, step in enumerate(campaign.steps):
            paths = tuple(
                p if p.is_absolute() or base_dir is None else base_dir / p for p in step.attachments
            )
            problems += [f"campaigns[{i}].steps[{j}].{p}" for p in check_files(paths)]
    audiences = {a.name for a in config.audiences}
    from network_anim.config.challenge_campaigns import is_generated

    for i, campaign in enumerate(config.campaigns):
        where = (
            f"campaign {campaign.id} (generated from [[challenges]])"
            if is_generated(campaign)
            else f"campaigns[{i}]"
        )
        if campaign.audience not in audiences:
            known = ", ".join(sorted(audiences)) or "none defined"
            problems.append(
                f"{where}.audience: {campaign.audience!r} is not a defined audience ({known})"
            )
        for j, step in enumerate(campaign.steps):
            problems.extend(
                template_problems(
                    config,
                    templates,
                    template=step.template,
                    urgency=step.urgency,
                    kind=step.kind,
                    variables=provided_variables(config, sources, campaign),
                    today=today,
                    where=f"{where}.steps[{j}].template",
                    step=f"campaign {campaign.id}, step {step.name}",
                )
            )
    return problems


def challenge_problems(config: Config, loaded: object | None = None) -> list[str]:
    """References a challenge makes: its audience, the product families it scores."""
    problems: list[str] = []
    audiences = {a.name for a in config.audiences}
    families = {p.family for p in config.products}
    companies_seen: dict[str, str] = {}
    for i, challenge in enumerate(config.challenges):
        where = f"challenges[{i}]"
        if challenge.audience not in audiences:
            problems.append(f"{where}.audience: {challenge.audience!r} is not a defined audience")
        unknown = sorted(set(challenge.scoring.families) - families)
        if unknown:
            problems.append(
                f"{where}.scoring.families: no product of family {', '.join(unknown)} in [[products]]"
            )
        for j, team in enumerate(challenge.teams):
            for company in team.companies:
                if company in companies_seen:
                    problems.append(
                        f"{where}.teams[{j}]: company {company} is already in team {companies_seen[company]}"
                    )
                companies_seen[company] = team.key
        companies_seen.clear()
    for i, audience in enumerate(config.audiences):
        if audience.challenge is not None and audience.challenge not in {
            c.id for c in config.challenges
        }:
            problems.append(
                f"audiences[{i}].challenge: {audience.challenge!r} is not a defined challenge"
            )
        if (audience.challenge is None) != (audience.registered is None):
            problems.append(f"audiences[{i}]: challenge and registered go together")
        if audience.condition is not None:
            defined = {c.id for c in config.challenges}
            for key in sorted(challenges_named(audience.condition) - defined):
                problems.append(
                    f"audiences[{i}].where: challenge {key!r} is not a defined challenge"
                )
    return problems
