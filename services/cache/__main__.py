from artdag_common.runtime import run_service
from artdag_common.settings import load_settings
from services.cache.app import start
from services.cache.settings import CacheSettings

if __name__ == "__main__":
    run_service("cache", load_settings(CacheSettings), start)
