// The repository's shape as a rule: each schema/<domain>.graphql is implemented by one module,
// src/modules/<domain>/, whose resolver file wires every root field the SDL declares and no field
// another domain's SDL declares.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { buildASTSchema, Kind, parse, type DocumentNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { loadTypeDefs, SCHEMA_DIR } from '../src/graphql/schema.js';

const MODULES_DIR = path.join(SCHEMA_DIR, '../src/modules');
const ROOTS = new Set(['Query', 'Mutation', 'Subscription']);

/** "Type.field" for every field a document declares, in a type or an extension of one. */
function declaredFields(doc: DocumentNode) {
  const fields = new Set<string>();
  for (const def of doc.definitions) {
    if (def.kind !== Kind.OBJECT_TYPE_DEFINITION && def.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
    for (const field of def.fields ?? []) fields.add(`${def.name.value}.${field.name.value}`);
  }
  return fields;
}

const domains = readdirSync(SCHEMA_DIR)
  .filter((f) => f.endsWith('.graphql') && f !== 'common.graphql')
  .map((f) => f.slice(0, -'.graphql'.length))
  .sort();

async function wiredFields(domain: string) {
  const module = (await import(path.join(MODULES_DIR, domain, `${domain}.resolvers.ts`))) as Record<string, Record<string, Record<string, unknown>>>;
  const exported = Object.values(module);
  expect(exported, `${domain}.resolvers.ts exports one resolver map`).toHaveLength(1);
  return Object.entries(exported[0]!).flatMap(([type, fields]) => Object.keys(fields).map((field) => `${type}.${field}`));
}

describe('schema/<domain>.graphql and src/modules/<domain>/', () => {
  // The server builds its schema assuming the SDL is valid (a start skips the check): it is checked here.
  it('the SDL files together are a valid schema document', () => {
    expect(() => buildASTSchema(parse(loadTypeDefs().join('\n')))).not.toThrow();
    expect(() => buildASTSchema(parse(`${loadTypeDefs().join('\n')}\nextend type Run { id: ID! }`))).toThrow(/only be defined once/);
  });
  const declared = new Map(domains.map((d) => [d, declaredFields(parse(readFileSync(path.join(SCHEMA_DIR, `${d}.graphql`), 'utf8')))]));

  it.each(domains)('%s: its resolvers wire only fields its SDL declares, and every root field it declares', async (domain) => {
    const wired = await wiredFields(domain);
    const own = declared.get(domain)!;
    expect(wired.filter((f) => !own.has(f)), 'wired here but declared in another domain').toEqual([]);
    const roots = [...own].filter((f) => ROOTS.has(f.split('.')[0]!));
    expect(roots.filter((f) => !wired.includes(f)), 'declared here but wired elsewhere (or nowhere)').toEqual([]);
  });
});

describe('layers', () => {
  it('resolvers reach the database through services: no resolver imports a store, except for its types', () => {
    const offenders: string[] = [];
    for (const domain of readdirSync(MODULES_DIR, { withFileTypes: true }).filter((e) => e.isDirectory())) {
      const dir = path.join(MODULES_DIR, domain.name);
      for (const file of readdirSync(dir).filter((f) => f.endsWith('.resolvers.ts'))) {
        const text = readFileSync(path.join(dir, file), 'utf8');
        for (const line of text.match(/^import (?!type ).*from '[^']*\.store\.js';$/gm) ?? []) offenders.push(`${domain.name}/${file}: ${line}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});

describe('error codes', () => {
  it('every code the server sets goes through apiError or errorResponse, typed by the one union', () => {
    const literal = /extensions:\s*\{\s*code:\s*['"]/;
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (file.endsWith('.ts') && !file.includes('generated') && literal.test(readFileSync(file, 'utf8'))) offenders.push(file);
      }
    };
    walk(path.join(SCHEMA_DIR, '../src'));
    expect(offenders).toEqual([]);
  });
});

describe('docs/api.md', () => {
  it('lists the root fields the schema declares now (npm run docs:api)', async () => {
    const { API_DOC, renderApiDoc } = (await import('../scripts/api-doc.js')) as { API_DOC: string; renderApiDoc: () => string };
    expect(readFileSync(API_DOC, 'utf8')).toBe(renderApiDoc());
  });
});
