"""The long-running service: ticks, the campaign scheduler, locks, signals."""
