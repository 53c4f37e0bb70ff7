from artdag_common.runtime import run_service
from artdag_common.settings import load_settings
from services.planner.app import start
from services.planner.settings import PlannerSettings

if __name__ == "__main__":
    run_service("planner", load_settings(PlannerSettings), start)
