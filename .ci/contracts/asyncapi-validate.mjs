// Parse an AsyncAPI document with the official parser (@asyncapi/parser) and exit 1 on any
// diagnostic of severity error: an invalid document, an unresolvable $ref, a broken rule.
// Warnings and hints are printed but do not fail. Usage: node asyncapi-validate.mjs FILE...
import { readFile } from 'node:fs/promises';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';

const SEVERITY = Object.fromEntries(
  Object.entries(DiagnosticSeverity).filter(([, value]) => typeof value === 'number')
    .map(([name, value]) => [value, name.toLowerCase()]),
);

async function check(parser, path) {
  const { document, diagnostics } = await parser.parse(await readFile(path, 'utf8'), { source: path });
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) errors += 1;
    const where = d.path.length ? d.path.join('.') : '(root)';
    console.log(`${path}: ${SEVERITY[d.severity]} ${d.code} at ${where}: ${d.message}`);
  }
  if (document === undefined && errors === 0) errors = 1; // never pass a document it could not read
  const version = document?.version() ?? 'unparsed';
  console.log(`${path}: AsyncAPI ${version}, ${errors} error(s), ${diagnostics.length} diagnostic(s)`);
  return errors;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node asyncapi-validate.mjs FILE...');
  process.exit(2);
}
const parser = new Parser();
let failures = 0;
for (const file of files) failures += await check(parser, file);
process.exit(failures === 0 ? 0 : 1);
