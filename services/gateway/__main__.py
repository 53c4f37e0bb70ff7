import uvicorn

from artdag_common.runtime import configure_logging
from artdag_common.settings import load_settings
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

if __name__ == "__main__":
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=5,
        proxy_headers=False,  # the app believes forwarded addresses itself, from ARTDAG_TRUSTED_PROXIES
    )
