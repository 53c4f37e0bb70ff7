from artdag_common.settings import CommonSettings


class AnalyzerSettings(CommonSettings):
    """Nothing of its own to configure yet."""
