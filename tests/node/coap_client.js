'use strict'
// A CoAP device for hubgate's integration tests, on node-coap (npm `coap`): a second client
// implementation beside libcoap's coap-client. Prints one JSON line per event on stdout.
//
//   node coap_client.js post URL BODY [CONTENT_FORMAT] [BLOCK1_SZX]
//       one confirmable POST; BLOCK1_SZX (0..6) sends the body block-wise (16 << SZX bytes per block)
//       -> {"event":"response","code":"2.04","payload":"..."}
//   node coap_client.js observe URL SECONDS [complete|reject|abandon|none]
//       registers an Observe on URL (a devicebound resource); prints the registration's answer and
//       every notification; each one that carries an ETag (a C2D lock) is settled at once with
//       DELETE URL/<lock>, DELETE URL/<lock>?reject or POST URL/<lock>/abandon (not with "none"),
//       printing that answer too. Cancels the registration and exits after SECONDS.
//       -> {"event":"registered"|"notification","code":"2.05","etag":"<hex>","payload":"...",
//           "properties":"<option 65000>"} and {"event":"settled","how":"complete","code":"2.02"}
const coap = require('coap')

// node-coap renders ETag as text by default, which mangles an 8-byte binary lock: keep it as hex.
coap.registerOption('ETag', (text) => Buffer.from(String(text), 'hex'), (buf) => Buffer.from(buf).toString('hex'))

function target (url) {
  const u = new URL(url)
  return { hostname: u.hostname, port: Number(u.port) || 5683, pathname: u.pathname, query: u.search.slice(1) }
}

function print (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }

// The message's ETag (its C2D lock) and option 65000 (its IoT Hub property bag) as text.
function describe (res, event) {
  let etag = ''
  let properties = ''
  for (const o of res.options || []) {
    if (o.name === 'ETag') etag = Buffer.isBuffer(o.value) ? o.value.toString('hex') : String(o.value)
    else if (String(o.name) === '65000') properties = Buffer.from(o.value).toString('latin1')
  }
  return { event, code: res.code, etag, payload: res.payload ? res.payload.toString() : '', properties }
}

function request (params, body, options) {
  return new Promise((resolve, reject) => {
    const req = coap.request(params)
    for (const [name, value] of Object.entries(options || {})) req.setOption(name, value)
    req.on('response', resolve)
    req.on('error', reject)
    req.on('timeout', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

async function post (url, body, contentFormat, szx) {
  const options = {}
  if (contentFormat) options['Content-Format'] = contentFormat
  if (szx !== undefined) options.Block1 = Buffer.of(Number(szx))
  const res = await request({ ...target(url), method: 'POST', confirmable: true }, Buffer.from(body), options)
  print({ event: 'response', code: res.code, payload: res.payload.toString() })
}

async function settle (url, lock, how) {
  const t = target(url)
  const base = t.pathname.replace(/\/$/, '') + '/' + lock
  const params = how === 'abandon'
    ? { ...t, pathname: base + '/abandon', method: 'POST' }
    : { ...t, pathname: base, query: how === 'reject' ? 'reject' : '', method: 'DELETE' }
  // Its own socket (agent: false): the observation's socket stays the observation's.
  const res = await request({ ...params, confirmable: true, agent: false })
  print({ event: 'settled', how, lock, code: res.code })
}

function observe (url, seconds, how) {
  return new Promise((resolve, reject) => {
    const req = coap.request({ ...target(url), method: 'GET', observe: true, confirmable: true })
    req.on('error', reject)
    req.on('response', (res) => {
      let first = true
      const pending = []
      res.on('data', () => {
        const d = describe(res, first ? 'registered' : 'notification')
        first = false
        print(d)
        if (d.etag && how !== 'none') pending.push(settle(url, d.etag, how).catch((e) => print({ event: 'error', message: String(e) })))
      })
      setTimeout(() => {
        Promise.all(pending).then(() => {
          // Deregister (GET with Observe 1, same token) while the socket is still open:
          // node-coap 1.4's close(true) closes the socket before it sends the deregistration.
          res.emit('deregister')
          setTimeout(() => { res.close(); resolve() }, 500)
        })
      }, seconds * 1000)
    })
    req.end()
  })
}

async function main () {
  const [mode, url, ...rest] = process.argv.slice(2)
  if (mode === 'post') return post(url, rest[0] || '', rest[1], rest[2])
  if (mode === 'observe') return observe(url, Number(rest[0] || 5), rest[1] || 'complete')
  throw new Error('usage: coap_client.js post URL BODY [CONTENT_FORMAT] [BLOCK1_SZX] | observe URL SECONDS [complete|reject|abandon|none]')
}

main().then(() => setTimeout(() => process.exit(0), 100), (e) => {
  print({ event: 'error', message: String(e && e.message ? e.message : e) })
  process.exit(1)
})
