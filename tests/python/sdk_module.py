"""Acts as an IoT Edge module built with the official Azure IoT SDK (azure-iot-device).

IoTHubModuleClient.create_from_edge_environment() reads the IOTEDGE_* environment, fetches the trust
bundle and signs a SAS token through the workload API socket. This prints what the SDK
obtained, as JSON, so that the caller can verify the token and the bundle.
"""

import json
import sys

from azure.iot.device import IoTHubModuleClient


def main() -> int:
    client = IoTHubModuleClient.create_from_edge_environment()
    config = client._mqtt_pipeline.pipeline_configuration
    print(
        json.dumps(
            {
                "token": str(config.sastoken),
                "trust_bundle": config.server_verification_cert,
                "hostname": config.hostname,
                "gateway_hostname": config.gateway_hostname,
                "device_id": config.device_id,
                "module_id": config.module_id,
            }
        )
    )
    client.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
