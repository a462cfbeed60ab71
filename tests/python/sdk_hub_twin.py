"""An Azure IoT SDK module's twin through outpost-hub: get the twin, patch reported
properties, then wait for a desired-properties patch. Prints, one JSON line each:
{"twin": ...}, {"reported": "ok"}, {"ready": true}, then {"patch": ...} when it arrives."""

import json
import sys
import threading

from azure.iot.device import IoTHubModuleClient
from azure.iot.device.exceptions import NoConnectionError


def say(value):
    print(json.dumps(value), flush=True)


def shutdown(client):
    # azure-iot-device 2.14 on paho-mqtt 1.x: when paho's network thread finishes the
    # DISCONNECT (on_disconnect with rc 0) before the caller's disconnect() returns, the SDK
    # raises NoConnectionError from a clean disconnect. The broker is not involved.
    try:
        client.shutdown()
    except NoConnectionError:
        pass


def main() -> int:
    client = IoTHubModuleClient.create_from_edge_environment(connection_retry=False)
    patched = threading.Event()

    def on_patch(patch):
        say({"patch": patch})
        patched.set()

    client.on_twin_desired_properties_patch_received = on_patch
    client.connect()
    say({"twin": client.get_twin()})
    client.patch_twin_reported_properties({"seen": 1, "status": {"ok": True}})
    say({"reported": "ok"})
    say({"ready": True})
    if not patched.wait(30):
        say({"error": "no desired patch within 30 s"})
        return 1
    shutdown(client)
    return 0


if __name__ == "__main__":
    sys.exit(main())
