"""Use cases, named as verbs. Each owns its transaction and writes its audit event in it."""
