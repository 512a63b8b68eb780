#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/ (committed; rerun only to change the seeds).

MQTT packets are assembled here by hand, independently of the codec under test, as an Azure IoT
device SDK would send them; property bags are the text forms devices put after the last '/'.
"""
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent


def varlen(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(text):
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack(">H", len(raw)) + raw


def packet(first, body):
    return bytes([first]) + varlen(len(body)) + body


HOST = "myhub.azure-devices.net"
SAS = ("SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fd1"
       "&sig=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4MTIzNDU2Nzg%3D&se=1700000000")

connect = packet(0x10, s("MQTT") + bytes([4, 0xC0]) + struct.pack(">H", 240) + s("d1")
                 + s(HOST + "/d1/?api-version=2021-04-12&DeviceClientType=azure-iot-device-c%2F1.9.0")
                 + s(SAS))
connect_will = packet(0x10, s("MQTT") + bytes([4, 0xEE]) + struct.pack(">H", 60) + s("d1")
                      + s("devices/d1/will") + s(b"\x00gone") + s("d1") + s("pw"))
connect_mqtt31 = packet(0x10, s("MQIsdp") + bytes([3, 0x02]) + struct.pack(">H", 60) + s("d1"))
events = "devices/d1/messages/events/"
publish0 = packet(0x30, s(events + "%24.ct=application%2Fjson&%24.ce=utf-8&k=v") + b'{"t":21.5}')
publish1 = packet(0x32, s(events + "%24.mid=1&%24.cid=c1&iothub-creation-time-utc=2024-01-01T00%3A00%3A00Z")
                  + struct.pack(">H", 1) + b"hello")
publish1_module = packet(0x3A, s("devices/d1/modules/m1/messages/events/$.mid=2&k")
                         + struct.pack(">H", 2) + b"\x00\x01\x02")
publish2 = packet(0x34, s(events) + struct.pack(">H", 3) + b"q2")
subscribe = packet(0x82, struct.pack(">H", 2) + s("devices/d1/messages/devicebound/#") + b"\x01")
unsubscribe = packet(0xA2, struct.pack(">H", 4) + s("devices/d1/messages/devicebound/#"))
puback = packet(0x40, struct.pack(">H", 7))
pubrel = packet(0x62, struct.pack(">H", 3))
pingreq = packet(0xC0, b"")
disconnect = packet(0xE0, b"")

MQTT = {
    "connect_azure_sdk.bin": connect,
    "connect_will.bin": connect_will,
    "connect_mqtt31.bin": connect_mqtt31,
    "publish_qos0_bag.bin": publish0,
    "publish_qos1_bag.bin": publish1,
    "publish_qos1_dup_module.bin": publish1_module,
    "publish_qos2.bin": publish2,
    "subscribe_c2d.bin": subscribe,
    "unsubscribe_c2d.bin": unsubscribe,
    "puback.bin": puback,
    "pubrel.bin": pubrel,
    "pingreq.bin": pingreq,
    "disconnect.bin": disconnect,
    "session.bin": connect + subscribe + publish0 + publish1 + puback + pingreq + disconnect,
    "truncated_connect.bin": connect[:40],
    "truncated_publish.bin": publish1[:-3],
    "truncated_length.bin": b"\x30\xff\xff",
    "oversize_claim.bin": b"\x30\xff\xff\xff\x7f",
}

BAGS = {
    "system_and_app.txt": "%24.mid=1&%24.ct=application%2Fjson&k=v",
    "raw_dollar.txt": "$.mid=abc&$.ce=utf-8&$.ctime=2024-01-01T00%3A00%3A00Z",
    "bare_key.txt": "key",
    "empty_value.txt": "key=",
    "lone_percent.txt": "%",
    "bad_escape.txt": "a=%zz",
    "empty_entries.txt": "&&a=1&&",
    "equals_in_value.txt": "a=b=c&%3D=%26",
    "utf8_escaped.txt": "name=caf%C3%A9&x=%2B%20",
    "empty_key.txt": "=v",
}


def main():
    for folder, files in (("mqtt_codec", MQTT), ("property_bag", BAGS)):
        d = HERE / "corpus" / folder
        d.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


if __name__ == "__main__":
    main()
