// The test S3 server: s3rver (npm, in .tools/s3rver) on an internal port,
// behind a front that adds what s3rver lacks and the tests need:
//  - AWS SigV4 verification (s3rver 3.7 checks only that the access key
//    exists), including the payload hash, so a test proves the client signs;
//  - virtual-host addressing for <bucket>.localhost (rewritten to path style);
//  - fault injection: POST /__kopt/fault with a JSON rule, GET /__kopt/stats.
// Usage: node s3_front.mjs <s3rver node_modules> <port> <dir> <bucket>
// with KOPT_TEST_S3_KEY / KOPT_TEST_S3_SECRET in the environment.
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

const [modules, portArg, dir, bucket] = process.argv.slice(2);
const require = createRequire(path.join(modules, 'x.js'));
const S3rver = require('s3rver');
const accessKey = process.env.KOPT_TEST_S3_KEY;
const secret = process.env.KOPT_TEST_S3_SECRET;

const stats = { requests: 0, bad_signatures: 0, faults: 0, by_method: {} };
let faults = []; // { method, query, path, status, delay_ms, skip, count }

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
const enc = (s) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

// The SigV4 check, from the AWS specification: canonical request, string to
// sign, signing key. Returns null when it matches, else a reason.
function checkSigV4(req, rawPath, rawQuery, body) {
  const auth = req.headers['authorization'] || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return 'no SigV4 authorization header';
  const [, key, day, region, signed, sig] = m;
  if (key !== accessKey) return 'unknown access key';
  const payload = req.headers['x-amz-content-sha256'];
  if (!payload) return 'no x-amz-content-sha256';
  if (payload !== 'UNSIGNED-PAYLOAD' && payload !== sha256(body)) return 'payload hash mismatch';
  const date = req.headers['x-amz-date'] || '';
  const query = rawQuery
    ? rawQuery.split('&').map((kv) => {
        const i = kv.indexOf('=');
        const k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
        const v = i < 0 ? '' : decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
        return [enc(k), enc(v)];
      }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
        .map(([k, v]) => k + '=' + v).join('&')
    : '';
  const names = signed.split(';');
  if (!names.includes('host')) return 'host not signed';
  const headers = names.map((n) => n + ':' + String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')).join('\n');
  const canonical = [req.method, rawPath, query, headers + '\n', signed, payload].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', date, `${day}/${region}/s3/aws4_request`, sha256(canonical)].join('\n');
  const k = hmac(hmac(hmac(hmac('AWS4' + secret, day), region), 's3'), 'aws4_request');
  return hmac(k, toSign).toString('hex') === sig ? null : 'signature mismatch';
}

function s3error(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

function matchFault(req, rawQuery, rawPath) {
  for (const f of faults) {
    if (f.count <= 0) continue;
    if (f.method && f.method !== req.method) continue;
    if (f.query && !(rawQuery || '').includes(f.query)) continue;
    if (f.path && !rawPath.includes(f.path)) continue;
    if (f.skip > 0) { f.skip--; continue; }
    f.count--;
    return f;
  }
  return null;
}

const inner = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir,
                           configureBuckets: [{ name: bucket }] });
const innerAddr = await inner.run();

const front = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks);
    const q = req.url.indexOf('?');
    let rawPath = q < 0 ? req.url : req.url.slice(0, q);
    const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
    if (rawPath.startsWith('/__kopt/')) {
      if (rawPath === '/__kopt/fault' && req.method === 'POST') {
        const f = JSON.parse(body.toString() || '{}');
        if (f.clear) faults = [];
        else faults.push({ skip: 0, count: 1, delay_ms: 0, status: 0, ...f });
        res.end('ok\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(stats));
      }
      return;
    }
    stats.requests++;
    stats.by_method[req.method] = (stats.by_method[req.method] || 0) + 1;
    const bad = checkSigV4(req, rawPath, rawQuery, body);
    if (bad) {
      stats.bad_signatures++;
      process.stderr.write(`s3_front: ${req.method} ${rawPath}: ${bad}\n`);
      return s3error(res, 403, 'SignatureDoesNotMatch', bad);
    }
    const f = matchFault(req, rawQuery, rawPath);
    if (f) {
      stats.faults++;
      if (f.delay_ms) await new Promise((r) => setTimeout(r, f.delay_ms));
      if (f.status) return s3error(res, f.status, f.status === 403 ? 'AccessDenied' : 'InternalError', 'injected');
    }
    // <bucket>.localhost: virtual-host style; s3rver gets path style.
    const host = String(req.headers.host || '').replace(/:\d+$/, '');
    if (host.endsWith('.localhost')) rawPath = '/' + host.slice(0, -'.localhost'.length) + rawPath;
    const headers = { ...req.headers, host: `127.0.0.1:${innerAddr.port}` };
    delete headers['authorization']; // checked above; s3rver's own V4 check is a no-op
    const up = http.request({ host: '127.0.0.1', port: innerAddr.port, method: req.method,
                              path: rawPath + (q < 0 ? '' : '?' + rawQuery), headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (e) => s3error(res, 502, 'BadGateway', e.message));
    up.end(body);
  });
});
front.listen(Number(portArg), '127.0.0.1', () => process.stdout.write(`s3_front: ready on ${portArg}\n`));
process.on('SIGTERM', () => process.exit(0));
