"""Thread names in the operating system (Linux)."""

import sys
import threading
from pathlib import Path

import pytest

from p1mqtt.threadnames import name_os_thread


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux names threads in /proc")
def test_the_thread_is_named_in_proc_and_cut_to_the_kernel_limit() -> None:
    """/proc shows the name; a longer one is cut to 15 bytes, not refused."""
    seen: list[str] = []

    def named() -> None:
        name_os_thread("p1mqtt-reader-with-a-long-name")
        tid = threading.get_native_id()
        seen.append(Path(f"/proc/self/task/{tid}/comm").read_text().strip())

    thread = threading.Thread(target=named)
    thread.start()
    thread.join()
    assert seen == ["p1mqtt-reader-w"]
