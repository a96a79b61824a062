"""NHS login: the OpenID Connect client the sign-in use cases reach through ``domain.identity.IdentityProvider``."""

from .oidc import RelyingParty

__all__ = ["RelyingParty"]
