"""``netanim preview``: what one message would be for chosen contacts, as files to open.

A source (a template and an urgency, a campaign step, a challenge's message) is planned
for the contacts by the planner itself (``planning.planner.plan_in_session``), in a
transaction that is always rolled back: the router's choice, its reasons, the rendering,
the signing and the costs are the ones a real send would have, and the database keeps
nothing (no message, delivery, post, link or event row). The router's fallbacks are
composed by the composer the way the fallback stage composes them.

Links: the real composer signs every link (post, unsubscribe, tracked clicks, open
pixel, the bounce token), but with a key made for this preview and thrown away after
it, for delivery keys of a ``preview-...`` occurrence. No server holds that key, so the
web app refuses every such token (404, logged, nothing recorded): opening or clicking a
preview never counts as an open, a click or a read, and its unsubscribe link
unsubscribes nobody.

``--send-to-me``: the email and SMS of the preview go to a ``[[team]]`` member through
the channel transports directly (``outbox.transports.ConfiguredTransports``), as the
portal's login links do, with no outbox row: a test is not a message to the network, so
it has no idempotency key in the outbox, counts against no frequency cap and never
appears in a report.

Modules: ``sources`` (what is previewed), ``contacts`` (for whom), ``render`` (the
planning), ``artefacts`` (each channel's file), ``files`` (the folder and routing.txt),
``send`` (the test to a team member).
"""
