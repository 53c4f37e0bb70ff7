from artdag_common.runtime import run_service
from artdag_common.settings import load_settings
from services.analyzer.app import start
from services.analyzer.settings import AnalyzerSettings

if __name__ == "__main__":
    run_service("analyzer", load_settings(AnalyzerSettings), start)
