"""An IoT Edge module built with the official Azure IoT SDK (azure-iot-device), talking to
outpost-hub: create_from_edge_environment() gets its token and the trust bundle from the
workload API, connects over MQTT/TLS 1.2 to IOTEDGE_GATEWAYHOSTNAME:8883 (or, with the
argument "websockets", over MQTT over WebSockets on 443), and sends one JSON message to output
`temperatureOutput` (with the property transport=tcp|websockets). Prints "sent" on success."""

import sys

from azure.iot.device import IoTHubModuleClient, Message
from azure.iot.device.exceptions import NoConnectionError


def shutdown(client):
    # azure-iot-device 2.14 on paho-mqtt 1.x: when paho's network thread finishes the
    # DISCONNECT (on_disconnect with rc 0) before the caller's disconnect() returns, the SDK
    # raises NoConnectionError from a clean disconnect. The broker is not involved.
    try:
        client.shutdown()
    except NoConnectionError:
        pass


def main() -> int:
    websockets = sys.argv[1:] == ["websockets"]
    client = IoTHubModuleClient.create_from_edge_environment(connection_retry=False, websockets=websockets)
    client.connect()
    message = Message('{"machine": {"temperature": 42.5}}')
    message.content_type = "application/json"
    message.content_encoding = "utf-8"
    message.custom_properties["source"] = "sdk"
    message.custom_properties["transport"] = "websockets" if websockets else "tcp"
    client.send_message_to_output(message, "temperatureOutput")
    shutdown(client)
    print("sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
