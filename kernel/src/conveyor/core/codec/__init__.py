"""How payloads become bytes and back: the JSON codec and its type registry."""
