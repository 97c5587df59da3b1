"""Privacy as code: identity, the gate before generating, consent, export, erasure, policy."""
