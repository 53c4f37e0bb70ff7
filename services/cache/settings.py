from artdag_common.settings import CommonSettings


class CacheSettings(CommonSettings):
    """The cache service has nothing of its own to configure yet."""
