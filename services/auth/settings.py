from artdag_common.settings import CommonSettings


class AuthSettings(CommonSettings):
    """Everything the auth service reads is shared (L2_SERVER, L2_DOMAIN, TOKEN_TTL_DAYS): see CommonSettings."""
