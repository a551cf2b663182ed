"""``python -m network_anim`` is ``netanim``."""

from network_anim.cli import main

main()
