"""paho-mqtt (1.6, the version azure-iot-device pins; 2.x works too) against outpost-hub: for MQTT 3.1.1 and 5, a subscriber and a publisher
exchange QoS 0, 1 and 2 messages; v5 user properties and content type survive the trip.
Usage: paho_clients.py PORT. Exits non-zero with the reason on failure."""

import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

PORT = int(sys.argv[1])


def new_client(client_id, protocol):
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    return mqtt.Client(client_id=client_id, protocol=protocol)


def run(protocol, name):
    received = []
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client, userdata, message):
        props = getattr(message, "properties", None)
        user = dict(props.UserProperty) if props is not None and hasattr(props, "UserProperty") else {}
        received.append((message.topic, message.payload.decode(), message.qos, user))
        if len(received) == 3:
            done.set()

    def on_subscribe(client, userdata, mid, *granted):
        subscribed.set()

    sub = new_client(f"paho-sub-{name}", protocol)
    sub.on_message = on_message
    sub.on_subscribe = on_subscribe
    sub.connect("127.0.0.1", PORT)
    sub.loop_start()
    sub.subscribe(f"paho/{name}/#", qos=2)
    if not subscribed.wait(10):
        raise SystemExit(f"{name}: no SUBACK")

    pub = new_client(f"paho-pub-{name}", protocol)
    pub.connect("127.0.0.1", PORT)
    pub.loop_start()
    for qos in (0, 1, 2):
        props = None
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = [("qos", str(qos))]
            props.ContentType = "text/plain"
        info = pub.publish(f"paho/{name}/{qos}", f"m{qos}", qos=qos, properties=props)
        info.wait_for_publish(10)
    if not done.wait(10):
        raise SystemExit(f"{name}: received only {received}")
    pub.loop_stop()
    sub.loop_stop()
    pub.disconnect()
    sub.disconnect()
    got = sorted((t, p, q) for t, p, q, _ in received)
    expected = [(f"paho/{name}/{q}", f"m{q}", q) for q in (0, 1, 2)]
    if got != expected:
        raise SystemExit(f"{name}: got {got}, expected {expected}")
    if protocol == mqtt.MQTTv5:
        for topic, _, qos, user in received:
            if user.get("qos") != str(qos):
                raise SystemExit(f"{name}: user property lost on {topic}: {user}")
    print(f"{name}: ok")


run(mqtt.MQTTv311, "v311")
run(mqtt.MQTTv5, "v5")
