"""Email bounces and complaints: read every source into one event, then close the loop."""
