"""Moved to :mod:`network_anim.channels.contract`.

Kept only while channels/email.py and channels/print_mail.py (being split apart) still
import from here; delete once they import ``network_anim.channels.contract``.
"""

from network_anim.channels.contract import *  # noqa: F403
from network_anim.channels.contract import __all__  # noqa: F401
