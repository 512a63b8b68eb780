// An IoT Hub device app written with the unmodified Azure IoT device SDK for Node
// (azure-iot-device + azure-iot-device-mqtt), pointed at hubgate: used by
// tests/integration/twin_node_test.cpp. Prints one JSON line per event on stdout.
//
//   node twin_device.js CONNECTION_STRING CA_FILE get
//   node twin_device.js CONNECTION_STRING CA_FILE report PATCH_JSON
//   node twin_device.js CONNECTION_STRING CA_FILE desired KEY VALUE_JSON SECONDS
//     (prints every properties.desired callback; exits 0 once desired[KEY] equals VALUE_JSON)
//   node twin_device.js CONNECTION_STRING CA_FILE method NAME answer|silent SECONDS
//     (onDeviceMethod(NAME): answers 200 with {"echo": request payload}, or never; prints each call)
'use strict';
const fs = require('fs');
const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

const [connStr, caFile, mode, ...rest] = process.argv.slice(2);
const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const fail = (what, err) => {
  print({ event: 'error', what, message: String(err && (err.message || err)), name: err && err.constructor && err.constructor.name });
  process.exit(2);
};

const client = Client.fromConnectionString(connStr, Mqtt);
client.on('error', (err) => print({ event: 'client_error', message: String(err && err.message) }));

async function main() {
  await client.setOptions({ ca: fs.readFileSync(caFile, 'utf8') });
  await client.open();
  print({ event: 'connected' });
  const twin = await client.getTwin();
  print({ event: 'twin', desired: twin.properties.desired, reported: twin.properties.reported });
  if (mode === 'get') {
    await client.close();
    process.exit(0);
  } else if (mode === 'report') {
    const patch = JSON.parse(rest[0]);
    twin.properties.reported.update(patch, async (err) => {
      if (err) fail('reported', err);
      print({ event: 'reported' });
      await client.close();
      process.exit(0);
    });
  } else if (mode === 'desired') {
    const [key, value, seconds] = rest;
    const want = JSON.stringify(JSON.parse(value));
    setTimeout(() => { print({ event: 'timeout' }); process.exit(3); }, Number(seconds) * 1000);
    twin.on('properties.desired', (delta) => {
      print({ event: 'desired', delta });
      if (JSON.stringify(delta[key]) === want) {
        client.close().finally(() => process.exit(0));
      }
    });
    print({ event: 'listening' });
  } else if (mode === 'method') {
    const [name, how, seconds] = rest;
    setTimeout(() => { print({ event: 'done' }); client.close().finally(() => process.exit(0)); }, Number(seconds) * 1000);
    client.onDeviceMethod(name, (request, response) => {
      print({ event: 'method', name: request.methodName, payload: request.payload });
      if (how === 'answer') {
        response.send(200, { echo: request.payload }, (err) => print({ event: 'answered', error: err ? String(err) : null }));
      }
    });
    print({ event: 'listening' });
  } else {
    fail('usage', new Error('unknown mode ' + mode));
  }
}

main().catch((err) => fail(mode, err));
