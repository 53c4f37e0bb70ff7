from artdag_common.runtime import run_service
from artdag_common.settings import load_settings
from services.auth.app import start
from services.auth.settings import AuthSettings

if __name__ == "__main__":
    run_service("auth", load_settings(AuthSettings), start)
