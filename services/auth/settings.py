from artdag_common.settings import CommonSettings


class AuthSettings(CommonSettings):
    """Nothing of its own to configure yet."""
