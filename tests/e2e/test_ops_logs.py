"""Operating tandem: logs (issue 5, LC-11). JSON lines parse one by one; SIGUSR1 reopens log_file so
logrotate's move-then-signal works; no line is lost or torn across the rotation. Runs between two mock
nodes, so it needs no real cluster."""
import json
import signal
import time

from harness import metrics, reload_tandem, wait_for


def json_lines(path):
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        assert line.strip(), "empty line %d in %s" % (n, path)
        obj = json.loads(line)                       # every line is one JSON object
        assert {"ts", "level", "msg"} <= set(obj), obj
        out.append(obj)
    return out


def test_json_log_lines_and_sigusr1_reopen(tandem, mock_cluster, tmp_path):
    origin, target = mock_cluster("origin"), mock_cluster("target")
    log = tmp_path / "tandem.log"
    p = tandem(log_file=str(log), log_format="json", **origin.overrides("origin"), **target.overrides("target"))
    wait_for("tandem to log its start-up", lambda: log.exists() and "readiness UP" in log.read_text(), 15)

    rotated = tmp_path / "tandem.log.1"
    log.rename(rotated)                              # what logrotate does before it signals
    p.send_signal(signal.SIGUSR1)
    wait_for("a new log file after SIGUSR1", log.exists, 10)
    assert reload_tandem(p, proxy_request_timeout_ms=9000) == 2   # something to log after the reopen
    wait_for("the reload in the new file", lambda: "epoch 2" in log.read_text(), 10)
    p.stop()

    before, after = json_lines(rotated), json_lines(log)
    assert any("readiness UP" in o["msg"] for o in before)
    assert not any("epoch 2" in o["msg"] for o in before), "lines written after SIGUSR1 went to the old file"
    assert any("epoch 2" in o["msg"] for o in after)
    assert any(o["msg"] == "stopped" for o in after)
    levels = {o["level"] for o in before + after}
    assert levels <= {"INFO", "WARN", "ERROR", "DEBUG", "TRACE", "FATAL", "PANIC"}, levels
