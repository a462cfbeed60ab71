"""An Azure IoT SDK module invoking direct methods of other modules through outpost-hub's
HTTPS endpoint (port 443 of the gateway host name), as invoke_method does on IoT Edge.
Argument: the target module. Prints one JSON line per call: {"result": ...} or {"error": ...}."""

import json
import os
import sys

from azure.iot.device import IoTHubModuleClient


def say(value):
    print(json.dumps(value), flush=True)


def main() -> int:
    target = sys.argv[1]
    device = os.environ["IOTEDGE_DEVICEID"]
    client = IoTHubModuleClient.create_from_edge_environment(connection_retry=False)
    calls = [
        (target, {"methodName": "echo", "payload": {"n": 7, "text": "hé"}, "responseTimeoutInSeconds": 10}),
        ("absent", {"methodName": "echo", "payload": None, "responseTimeoutInSeconds": 5}),
        (target, {"methodName": "stop", "payload": None, "responseTimeoutInSeconds": 10}),
    ]
    for module, params in calls:
        try:
            say({"result": client.invoke_method(params, device, module)})
        except Exception as e:  # ClientError("Unexpected failure") from ServiceError("... 404 ...")
            say({"error": str(e), "cause": str(e.__cause__)})
    try:
        client.shutdown()
    except Exception:
        pass  # never connected over MQTT
    return 0


if __name__ == "__main__":
    sys.exit(main())
