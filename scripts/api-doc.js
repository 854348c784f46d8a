// `npm run docs:api`: rewrites the generated part of docs/api.md (between its two markers) from
// schema/*.graphql: every root field of every domain with its arguments, type and first line of
// description. test/layout.test.ts fails when the file is not up to date.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kind, parse, print } from 'graphql';

const root = fileURLToPath(new URL('..', import.meta.url));
export const API_DOC = path.join(root, 'docs/api.md');
const BEGIN = '<!-- generated from schema/ by `npm run docs:api`: do not edit below -->';
const END = '<!-- end of generated part -->';
const ROOTS = ['Query', 'Mutation', 'Subscription'];

/** The generated part: one table per schema file. */
export function rootFieldTables() {
  const dir = path.join(root, 'schema');
  let out = '';
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.graphql')).sort()) {
    const rows = [];
    for (const def of parse(readFileSync(path.join(dir, file), 'utf8')).definitions) {
      if ((def.kind !== Kind.OBJECT_TYPE_DEFINITION && def.kind !== Kind.OBJECT_TYPE_EXTENSION) || !ROOTS.includes(def.name.value)) continue;
      for (const field of def.fields ?? []) {
        if (field.name.value.startsWith('_')) continue;
        const args = field.arguments?.length ? `(${field.arguments.map((a) => `${a.name.value}: ${print(a.type)}`).join(', ')})` : '';
        const about = field.description ? field.description.value.split('\n')[0].replace(/\|/g, '\\|') : '';
        rows.push(`| ${def.name.value} | \`${field.name.value}${args}: ${print(field.type)}\` | ${about} |`);
      }
    }
    if (rows.length) out += `\n### ${file}\n\n| root | field | |\n| --- | --- | --- |\n${rows.join('\n')}\n`;
  }
  return out;
}

/** docs/api.md with its generated part rewritten. */
export function renderApiDoc(current = readFileSync(API_DOC, 'utf8')) {
  const begin = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${API_DOC} has lost its markers`);
  return `${current.slice(0, begin + BEGIN.length)}\n${rootFieldTables()}\n${current.slice(end)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  writeFileSync(API_DOC, renderApiDoc());
}
