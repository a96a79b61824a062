"""Development and test tools that are not part of the running gateway (e.g. the GP Connect provider simulator)."""
