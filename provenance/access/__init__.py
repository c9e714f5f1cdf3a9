"""Access control: tokens, users and projects (`tokens`), and the one visibility rule (`visibility`)."""

from provenance.access.tokens import TOKEN_PREFIX, AccessStore
from provenance.access.visibility import ANONYMOUS_ADMIN, LOCAL_ADMIN, Principal, redact

__all__ = ["ANONYMOUS_ADMIN", "LOCAL_ADMIN", "TOKEN_PREFIX", "AccessStore", "Principal", "redact"]
