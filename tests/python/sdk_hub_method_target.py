"""An Azure IoT SDK module that answers direct methods through outpost-hub: every request
is answered with status 200 and {"method": name, "echo": payload}. Prints {"ready": true}
once it listens, then {"handled": name} per request; stops after the method "stop" or 60 s."""

import json
import sys
import threading

from azure.iot.device import IoTHubModuleClient, MethodResponse
from azure.iot.device.exceptions import NoConnectionError


def say(value):
    print(json.dumps(value), flush=True)


def main() -> int:
    client = IoTHubModuleClient.create_from_edge_environment(connection_retry=False)
    stop = threading.Event()

    def on_method(request):
        body = {"method": request.name, "echo": request.payload}
        client.send_method_response(MethodResponse.create_from_method_request(request, 200, body))
        say({"handled": request.name})
        if request.name == "stop":
            stop.set()

    client.on_method_request_received = on_method
    client.connect()
    say({"ready": True})
    stopped = stop.wait(60)
    try:
        client.shutdown()
    except NoConnectionError:
        pass  # the SDK's shutdown race on paho-mqtt 1.x; see sdk_hub_twin.py
    return 0 if stopped else 1


if __name__ == "__main__":
    sys.exit(main())
