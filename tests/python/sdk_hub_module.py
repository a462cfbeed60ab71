"""An IoT Edge module built with the official Azure IoT SDK (azure-iot-device), talking to
outpost-hub: create_from_edge_environment() gets its token and the trust bundle from the
workload API, connects over MQTT/TLS 1.2 to IOTEDGE_GATEWAYHOSTNAME:8883, and sends one JSON
message to output `temperatureOutput`. Prints "sent" on success."""

import sys

from azure.iot.device import IoTHubModuleClient, Message


def main() -> int:
    client = IoTHubModuleClient.create_from_edge_environment(connection_retry=False)
    client.connect()
    message = Message('{"machine": {"temperature": 42.5}}')
    message.content_type = "application/json"
    message.content_encoding = "utf-8"
    message.custom_properties["source"] = "sdk"
    client.send_message_to_output(message, "temperatureOutput")
    client.shutdown()
    print("sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
