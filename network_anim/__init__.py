"""network-anim: animate a B2B distribution network over the channel that fits each message."""

__version__ = "0.1.0"
