"""The partner portal: magic-link login, tiered posts, flash posts, challenges, points,
rewards shop and preferences (server-rendered pages, French by default, English too).

Its tables live in :mod:`network_anim.db.models`; importing this package imports
nothing else, so ``network_anim.db.models`` can pull the tables in without a cycle.
"""
