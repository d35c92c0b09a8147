"""The Windows service's logic, with pywin32 replaced by fakes (it runs on any system)."""

import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from p1mqtt import winservice
from p1mqtt.errors import ConfigError, P1MqttError
from p1mqtt.winservice import (
    CLASS_STRING,
    ERROR_SERVICE_SPECIFIC_ERROR,
    Pywin32,
    ServiceRunner,
    exit_codes,
    make_service_class,
)

WIN32SERVICE = SimpleNamespace(
    SERVICE_STOPPED=1,
    SERVICE_STOP_PENDING=3,
    SERVICE_RUNNING=4,
    SERVICE_AUTO_START=2,
)


class FakeFramework:
    """pywin32's ServiceFramework: records the statuses reported to Windows."""

    def __init__(self, args: Any) -> None:
        self.args = args
        self.reported: list[tuple[int, dict[str, int]]] = []

    def ReportServiceStatus(self, status: int, **codes: int) -> None:
        self.reported.append((status, codes))


class FakeServiceManager:
    """pywin32's servicemanager: records event log messages."""

    def __init__(self) -> None:
        self.info: list[str] = []
        self.errors: list[str] = []

    def LogInfoMsg(self, message: str) -> None:
        self.info.append(message)

    def LogErrorMsg(self, message: str) -> None:
        self.errors.append(message)


def service_with(
    run: Any, option: str | None = "C:\\p1mqtt\\config.json"
) -> tuple[Any, FakeServiceManager]:
    """An instance of the service class around a fake bridge ``run(config, stop) -> int``."""
    manager = FakeServiceManager()
    cls = make_service_class(
        FakeFramework,
        WIN32SERVICE,
        manager,
        lambda name, key, default: option if (name, key) == ("p1mqtt", "config") else default,
        lambda config: ServiceRunner(config, run=run),
    )
    return cls(["p1mqtt"]), manager


def test_exit_codes() -> None:
    """0 is a clean stop; anything else is a service-specific error carrying the status."""
    assert exit_codes(0) == (0, 0)
    assert exit_codes(1) == (ERROR_SERVICE_SPECIFIC_ERROR, 1)
    assert exit_codes(2) == (ERROR_SERVICE_SPECIFIC_ERROR, 2)


def test_start_runs_the_bridge_until_svcstop() -> None:
    """SvcRun reports RUNNING and runs the bridge; SvcStop reports STOP_PENDING and stops it."""
    seen: dict[str, Any] = {}
    running = threading.Event()

    def bridge(config: Path | None, stop: threading.Event) -> int:
        seen["config"] = config
        running.set()
        assert stop.wait(timeout=30)
        return 0

    service, manager = service_with(bridge)
    worker = threading.Thread(target=service.SvcRun)
    worker.start()
    assert running.wait(timeout=30)
    service.SvcStop()
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert seen["config"] == Path("C:\\p1mqtt\\config.json")
    statuses = [status for status, _ in service.reported]
    assert statuses == [
        WIN32SERVICE.SERVICE_RUNNING,
        WIN32SERVICE.SERVICE_STOP_PENDING,
        WIN32SERVICE.SERVICE_STOP_PENDING,
    ]
    assert service.reported[1][1] == {"waitHint": winservice.STOP_WAIT_HINT_MS}
    assert manager.errors == []
    assert manager.info == ["p1mqtt: started", "p1mqtt: stopped"]


def test_shutdown_stops_like_a_stop() -> None:
    """Windows shutting down stops the bridge cleanly too."""
    service, _ = service_with(lambda config, stop: 0)
    service.SvcShutdown()
    assert service.runner.stop_event.is_set()
    assert service.reported == [
        (WIN32SERVICE.SERVICE_STOP_PENDING, {"waitHint": winservice.STOP_WAIT_HINT_MS})
    ]


def test_failure_is_reported_with_its_exit_status() -> None:
    """A failing bridge: SERVICE_STOPPED with ERROR_SERVICE_SPECIFIC_ERROR and the status."""
    service, manager = service_with(lambda config, stop: 1)
    service.SvcRun()
    assert service.reported[-1] == (
        WIN32SERVICE.SERVICE_STOPPED,
        {"win32ExitCode": ERROR_SERVICE_SPECIFIC_ERROR, "svcExitCode": 1},
    )
    assert manager.errors == ["p1mqtt: the bridge stopped with exit status 1 (see the log file)"]


def test_configuration_error_exits_2_with_its_message() -> None:
    """A bad configuration becomes exit status 2 and its message goes to the event log."""

    def bridge(config: Path | None, stop: threading.Event) -> int:
        raise ConfigError("serial.port: field required")

    service, manager = service_with(bridge)
    service.SvcRun()
    assert service.reported[-1][1] == {
        "win32ExitCode": ERROR_SERVICE_SPECIFIC_ERROR,
        "svcExitCode": 2,
    }
    assert manager.errors == ["p1mqtt: serial.port: field required"]


def test_crash_exits_1_and_logs_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception: exit status 1, logged with its traceback."""

    def bridge(config: Path | None, stop: threading.Event) -> int:
        raise RuntimeError("boom")

    runner = ServiceRunner(None, run=bridge)
    with caplog.at_level(logging.ERROR, logger="p1mqtt.winservice"):
        assert runner.run() == 1
    assert runner.failure == "RuntimeError: boom"
    assert caplog.records[0].exc_info is not None


def test_without_a_config_option_the_runner_gets_none() -> None:
    """No registry option: the bridge falls back to $P1MQTT_CONFIG / defaults."""
    service, _ = service_with(lambda config, stop: 0, option=None)
    assert service.runner.config_path is None


def test_module_imports_without_pywin32() -> None:
    """On a system without pywin32 the module imports and offers no service class."""
    assert winservice.load_pywin32() is None
    assert winservice.P1MqttService is None


class FakeWin32Error(Exception):
    """pywintypes.error: winerror and strerror."""

    def __init__(self, winerror: int, strerror: str) -> None:
        super().__init__(winerror, strerror)
        self.winerror = winerror
        self.strerror = strerror


class FakeServiceUtil:
    """win32serviceutil: records installs; InstallService may fail."""

    def __init__(self, install_error: int | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.install_error = install_error

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))
            if name in {"InstallService", "RemoveService"} and self.install_error is not None:
                raise FakeWin32Error(self.install_error, "some reason")

        return call


def fake_pywin32(util: FakeServiceUtil) -> Pywin32:
    """The pywin32 modules, faked."""
    service_module = SimpleNamespace(**vars(WIN32SERVICE), error=FakeWin32Error)
    return Pywin32(service_module, util, FakeServiceManager())


def test_install_creates_the_service_and_stores_the_config_path() -> None:
    """install() registers our class for automatic delayed start and saves the config path."""
    util = FakeServiceUtil()
    winservice.install(Path("C:\\p1\\config.json"), modules=fake_pywin32(util))
    (name, args, kwargs), (option_name, option_args, _) = util.calls
    assert name == "InstallService"
    assert args[:2] == (CLASS_STRING, "p1mqtt")
    assert kwargs["startType"] == WIN32SERVICE.SERVICE_AUTO_START
    assert kwargs["delayedstart"] is True
    assert option_name == "SetServiceCustomOption"
    assert option_args == ("p1mqtt", "config", str(Path("C:\\p1\\config.json")))


def test_install_over_an_existing_service_updates_it() -> None:
    """ERROR_SERVICE_EXISTS turns the install into an update."""
    util = FakeServiceUtil(install_error=winservice.ERROR_SERVICE_EXISTS)
    winservice.install(Path("C:\\p1\\config.json"), modules=fake_pywin32(util))
    assert [name for name, _, _ in util.calls] == [
        "InstallService",
        "ChangeServiceConfig",
        "SetServiceCustomOption",
    ]


def test_install_failure_is_a_clear_error() -> None:
    """Any other win32 error becomes a P1MqttError with its text and code."""
    util = FakeServiceUtil(install_error=5)
    with pytest.raises(
        P1MqttError, match=r"installing the Windows service failed: some reason \(5\)"
    ):
        winservice.install(Path("C:\\p1\\config.json"), modules=fake_pywin32(util))


def test_remove_tolerates_a_missing_service() -> None:
    """Removing a service that does not exist is not an error."""
    util = FakeServiceUtil(install_error=winservice.ERROR_SERVICE_DOES_NOT_EXIST)
    winservice.remove(modules=fake_pywin32(util))
    assert util.calls[0][0] == "RemoveService"


def test_install_without_pywin32_says_how_to_get_it() -> None:
    """Without pywin32 the error names the extra to install."""
    with pytest.raises(P1MqttError, match=r"p1mqtt\[windows\]"):
        winservice.install(Path("C:\\p1\\config.json"))


def test_run_bridge_uses_the_service_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_bridge sets $STATE_DIRECTORY, logs to a file there by default, runs the bridge."""
    calls: dict[str, Any] = {}

    class FakeBridge:
        def __init__(self, config: Any) -> None:
            calls["port"] = config.serial.port

        def run(self, stop: threading.Event) -> int:
            calls["stop"] = stop
            return 0

    monkeypatch.setattr("p1mqtt.service.Bridge", FakeBridge)
    monkeypatch.setattr(
        "p1mqtt.logsetup.configure_logging", lambda *args: calls.setdefault("log", args)
    )
    config = tmp_path / "config.json"
    config.write_text('{"serial": {"port": "COM7"}}')
    env = {"PROGRAMDATA": "C:\\ProgramData"}
    stop = threading.Event()
    assert winservice.run_bridge(config, stop, env=env, platform="win32") == 0
    assert env["STATE_DIRECTORY"] == "C:\\ProgramData\\p1mqtt"
    assert calls["port"] == "COM7"
    assert calls["stop"] is stop
    assert calls["log"][2].name == "p1mqtt.log"
