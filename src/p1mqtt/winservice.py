"""Running the bridge as a Windows service (pywin32), with its logic testable on any system.

pywin32 (the ``windows`` extra) hosts the service in ``pythonservice.exe`` and calls the class
named by :data:`CLASS_STRING`. That class is a thin shell made by :func:`make_service_class`
around a :class:`ServiceRunner`, which holds all the behaviour: load the configuration, run the
bridge until the stop event is set, turn failures into an exit status. The win32 modules are
imported only on Windows, so this module imports anywhere and tests pass fakes for them.
"""

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p1mqtt.errors import P1MqttError
from p1mqtt.paths import STATE_DIRECTORY_ENV, service_data_dir_for

__all__ = [
    "CLASS_STRING",
    "CONFIG_OPTION",
    "DISPLAY_NAME",
    "SERVICE_NAME",
    "P1MqttService",
    "Pywin32",
    "ServiceRunner",
    "exit_codes",
    "install",
    "load_pywin32",
    "make_service_class",
    "remove",
    "run_bridge",
]

logger = logging.getLogger(__name__)

SERVICE_NAME = "p1mqtt"
DISPLAY_NAME = "p1mqtt (smart meter P1 port to MQTT)"
DESCRIPTION = "Reads the smart meter's P1 port and publishes every reading to an MQTT broker."
CLASS_STRING = "p1mqtt.winservice.P1MqttService"
"""What pywin32's service host imports (module.Class)."""
CONFIG_OPTION = "config"
"""The service's registry parameter naming the configuration file."""
LOG_FILE_NAME = "p1mqtt.log"
ERROR_SERVICE_SPECIFIC_ERROR = 1066
ERROR_SERVICE_EXISTS = 1073
ERROR_SERVICE_DOES_NOT_EXIST = 1060
STOP_WAIT_HINT_MS = 15_000
"""How long Windows is told a stop may take (the bridge flushes and marks ``offline``)."""
EXIT_CONFIG = 2
EXIT_FAILURE = 1


def exit_codes(status: int) -> tuple[int, int]:
    """(win32 exit code, service-specific exit code) to report for the bridge's exit status.

    A non-zero status is reported as ERROR_SERVICE_SPECIFIC_ERROR with the status itself, so
    ``sc query p1mqtt`` shows it and the recovery actions (restart) apply.
    """
    if status == 0:
        return 0, 0
    return ERROR_SERVICE_SPECIFIC_ERROR, status


def run_bridge(
    config_path: Path | None,
    stop: threading.Event,
    *,
    env: MutableMapping[str, str] | None = None,
    platform: str = sys.platform,
) -> int:
    """What the service does: load the configuration, log to a file, run the bridge until stop.

    The state (status file) and the default log file go to the machine-wide data directory
    (``%PROGRAMDATA%\\p1mqtt``), where ``p1mqtt health`` run by an administrator finds them.
    """
    # The bridge pulls in paho, pyserial and the decoder: only load them when really running.
    from p1mqtt.config import load_config  # noqa: PLC0415
    from p1mqtt.logsetup import configure_logging  # noqa: PLC0415
    from p1mqtt.service import Bridge  # noqa: PLC0415

    environ = os.environ if env is None else env
    environ.setdefault(STATE_DIRECTORY_ENV, str(service_data_dir_for(environ, platform)))
    data_dir = Path(environ[STATE_DIRECTORY_ENV])
    config = load_config(config_path, env=environ)
    log = config.logging
    log_file = log.file if log.file is not None else data_dir / LOG_FILE_NAME
    configure_logging(log.level, log.format, log_file, log.max_bytes, log.backup_count)
    return Bridge(config).run(stop)


class ServiceRunner:
    """The service's life without any win32 call: run until :meth:`request_stop`."""

    def __init__(
        self,
        config_path: Path | None,
        *,
        run: Callable[[Path | None, threading.Event], int] = run_bridge,
    ) -> None:
        self.config_path = config_path
        self.stop_event = threading.Event()
        self.failure: str | None = None
        """Why the last run failed, in one line (for the Windows event log)."""
        self._run = run

    def run(self) -> int:
        """Run the bridge; return its exit status (2 for configuration errors, 1 for crashes)."""
        self.failure = None
        try:
            status = int(self._run(self.config_path, self.stop_event))
        except P1MqttError as error:
            self.failure = str(error)
            logger.error("p1mqtt service: %s", error)  # noqa: TRY400 - the message is the point
            return EXIT_CONFIG
        except Exception as error:
            self.failure = f"{type(error).__name__}: {error}"
            logger.exception("p1mqtt service failed")
            return EXIT_FAILURE
        if status:
            self.failure = f"the bridge stopped with exit status {status} (see the log file)"
        return status

    def request_stop(self) -> None:
        """Ask the bridge to stop (from the service control handler's thread)."""
        self.stop_event.set()


def make_service_class(
    framework: Any,
    win32service: Any,
    servicemanager: Any,
    get_option: Callable[[str, str, Any], Any],
    runner_factory: Callable[[Path | None], ServiceRunner] = ServiceRunner,
) -> type[Any]:
    """The pywin32 service class, built on ``framework`` (``ServiceFramework`` or a fake)."""

    class P1MqttService(framework):  # type: ignore[misc]
        """The p1mqtt Windows service: the bridge, stopped by the service control manager."""

        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def __init__(self, args: Any) -> None:
            framework.__init__(self, args)
            configured = get_option(SERVICE_NAME, CONFIG_OPTION, None)
            self.runner = runner_factory(Path(configured) if configured else None)

        def SvcStop(self) -> None:
            """Stop requested: say so, then let the bridge finish."""
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_WAIT_HINT_MS)
            self.runner.request_stop()

        def SvcShutdown(self) -> None:
            """Windows is shutting down: stop cleanly too (the broker is told ``offline``)."""
            self.SvcStop()

        def SvcRun(self) -> None:
            """Run the bridge; report a failure's exit status so recovery actions apply."""
            self.ReportServiceStatus(win32service.SERVICE_RUNNING)
            servicemanager.LogInfoMsg(f"{SERVICE_NAME}: started")
            status = self.runner.run()
            win32_code, service_code = exit_codes(status)
            if status:
                servicemanager.LogErrorMsg(f"{SERVICE_NAME}: {self.runner.failure}")
                self.ReportServiceStatus(
                    win32service.SERVICE_STOPPED,
                    win32ExitCode=win32_code,
                    svcExitCode=service_code,
                )
            else:
                servicemanager.LogInfoMsg(f"{SERVICE_NAME}: stopped")
                self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)

    return P1MqttService


@dataclass(frozen=True, slots=True)
class Pywin32:
    """The pywin32 modules the service needs."""

    win32service: Any
    win32serviceutil: Any
    servicemanager: Any


def load_pywin32() -> Pywin32 | None:
    """The pywin32 modules, or None when not on Windows or pywin32 is not installed."""
    if sys.platform == "win32":
        return _import_pywin32()
    return None


def _import_pywin32() -> Pywin32 | None:
    try:
        return Pywin32(
            importlib.import_module("win32service"),
            importlib.import_module("win32serviceutil"),
            importlib.import_module("servicemanager"),
        )
    except ImportError:
        return None


def _require_pywin32() -> Pywin32:
    modules = load_pywin32()
    if modules is None:
        raise P1MqttError(
            'the Windows service needs pywin32: pip install "p1mqtt[windows]" '
            "(in the same environment as p1mqtt)"
        )
    return modules


def install(config_path: Path, *, modules: Pywin32 | None = None) -> None:
    """Create (or update) the service: automatic delayed start, hosted by pythonservice.exe."""
    win32 = modules or _require_pywin32()
    options = {
        "startType": win32.win32service.SERVICE_AUTO_START,
        "description": DESCRIPTION,
        "delayedstart": True,
    }
    try:
        try:
            win32.win32serviceutil.InstallService(
                CLASS_STRING, SERVICE_NAME, DISPLAY_NAME, **options
            )
        except win32.win32service.error as error:
            if error.winerror != ERROR_SERVICE_EXISTS:
                raise
            win32.win32serviceutil.ChangeServiceConfig(
                CLASS_STRING, SERVICE_NAME, displayName=DISPLAY_NAME, **options
            )
        win32.win32serviceutil.SetServiceCustomOption(SERVICE_NAME, CONFIG_OPTION, str(config_path))
    except win32.win32service.error as error:
        raise P1MqttError(
            f"installing the Windows service failed: {error.strerror} ({error.winerror})"
        ) from error


def remove(*, modules: Pywin32 | None = None) -> None:
    """Delete the service (already stopped); nothing to do when it does not exist."""
    win32 = modules or _require_pywin32()
    try:
        win32.win32serviceutil.RemoveService(SERVICE_NAME)
    except win32.win32service.error as error:
        if error.winerror == ERROR_SERVICE_DOES_NOT_EXIST:
            return
        raise P1MqttError(
            f"removing the Windows service failed: {error.strerror} ({error.winerror})"
        ) from error


def _service_class() -> type[Any] | None:
    win32 = load_pywin32()
    if win32 is None:
        return None
    return make_service_class(
        win32.win32serviceutil.ServiceFramework,
        win32.win32service,
        win32.servicemanager,
        win32.win32serviceutil.GetServiceCustomOption,
    )


P1MqttService: type[Any] | None = _service_class()
"""The class pywin32 hosts (:data:`CLASS_STRING`); None where pywin32 is unavailable."""
