from artdag_common.runtime import run_service
from artdag_common.settings import load_settings
from services.executor.app import start
from services.executor.settings import ExecutorSettings

if __name__ == "__main__":
    run_service("executor", load_settings(ExecutorSettings), start)
